//! The settings file (herald-server's config): TOML parsing, then validation.
//!
//! Input: the text of a settings file. Checked, besides "no panic, no hang": every refusal
//! lists at least one problem; accepted settings name a store, and written back as TOML they
//! load to the same settings.
#![no_main]

use std::path::Path;

use herald_server::config::{Overrides, Settings};
use libfuzzer_sys::fuzz_target;

fn load(text: &str) -> Result<Settings, herald_server::config::ConfigError> {
    let env: Vec<(String, String)> = Vec::new();
    Settings::load_text(Path::new("herald.toml"), text, env, Overrides::default())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match load(text) {
        Ok(settings) => {
            settings.store_choice().expect("validated settings name a store");
            let written = toml::to_string(&settings).expect("settings serialise");
            let again = load(&written).unwrap_or_else(|err| panic!("{written}\nfails: {err}"));
            assert_eq!(again, settings, "{written}");
        }
        Err(err) => assert!(!err.problems().is_empty()),
    }
});
