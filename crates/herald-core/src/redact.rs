//! Credentials kept out of what is shown: logs, errors and `Debug` output.

/// What stands in for a secret in `Debug` output.
pub const REDACTED: &str = "<redacted>";

/// A connection URL without its password: `postgres://user:secret@host/db` as
/// `postgres://user@host/db`; a `password=` query parameter (libpq takes one) is dropped too.
pub fn url_without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (rest, query) = rest.split_once('?').map_or((rest, None), |(r, q)| (r, Some(q)));
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    let mut shown = format!("{scheme}://{authority}");
    if let Some(path) = path {
        shown.push('/');
        shown.push_str(path);
    }
    if let Some(query) = query {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| !pair.to_ascii_lowercase().starts_with("password="))
            .collect();
        if !kept.is_empty() {
            shown.push('?');
            shown.push_str(&kept.join("&"));
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        for (url, shown) in [
            ("postgres://herald:s3cr%40t@db:5432/herald", "postgres://herald@db:5432/herald"),
            (
                "postgres://herald@db/herald?sslmode=require",
                "postgres://herald@db/herald?sslmode=require",
            ),
            ("postgres://u:p@host", "postgres://u@host"),
            ("postgres://db/herald", "postgres://db/herald"),
            (
                "postgres://db/herald?password=s3cr3t&sslmode=disable",
                "postgres://db/herald?sslmode=disable",
            ),
            ("postgres://db/herald?PASSWORD=s3cr3t", "postgres://db/herald"),
            ("postgres://u:p@host?sslmode=require", "postgres://u@host?sslmode=require"),
            ("nats://user:pass@127.0.0.1:4222", "nats://user@127.0.0.1:4222"),
            ("sqlite", "sqlite"),
        ] {
            assert_eq!(url_without_password(url), shown, "{url}");
        }
    }
}
