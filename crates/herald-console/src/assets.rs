//! The console's scripts and styles, embedded in the binary: vendored htmx and uPlot (pinned,
//! licenses beside them in `assets/`) and the console's own small files.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Name in the URL, content type, bytes.
type Asset = (&'static str, &'static str, &'static [u8]);

const JS: &str = "text/javascript";
const CSS: &str = "text/css";

const ASSETS: &[Asset] = &[
    ("htmx-2.0.11.min.js", JS, include_bytes!("../assets/htmx/htmx.min.js")),
    ("uPlot-1.6.32.min.js", JS, include_bytes!("../assets/uplot/uPlot.iife.min.js")),
    ("uPlot-1.6.32.min.css", CSS, include_bytes!("../assets/uplot/uPlot.min.css")),
    ("console.js", JS, include_bytes!("../assets/console.js")),
    ("console.css", CSS, include_bytes!("../assets/console.css")),
];

/// Changes whenever the console's own files change, so that their URLs (`?v=`) can be cached
/// for a year like the versioned vendored files.
pub const OWN_VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn own_version_tag() -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (_, _, bytes) in ASSETS {
        for byte in *bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{OWN_VERSION}-{:x}", hash & 0xffff_ffff)
}

pub async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [(CONTENT_TYPE, *content_type), (CACHE_CONTROL, "public, max-age=31536000, immutable")],
            *bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn licenses_stay_beside_vendored_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        assert!(dir.join("htmx/LICENSE").is_file());
        assert!(dir.join("uplot/LICENSE").is_file());
    }
}
