//! Form-encoded request bodies (`application/x-www-form-urlencoded`), with repeated keys.
//!
//! `axum::Form` (serde_urlencoded) keeps only one value of a repeated key, but RongCloud sends
//! lists that way: `/user/tags/get.json` takes `userIds=a&userIds=b`. Keys written the PHP way
//! (`userIds[]=a`, `userIds[0]=a`) name the same list, since back ends built on
//! `http_build_query` send those.

use super::error::RongError;

/// The decoded pairs of a form body, in order.
#[derive(Debug, Default)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// Decodes a form body; an empty one is "no POST data".
    pub fn parse(body: &[u8]) -> Result<Self, RongError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(RongError::NoPostData);
        }
        let pairs = form_urlencoded::parse(body)
            .map(|(key, value)| (list_name(&key).to_owned(), value.into_owned()))
            .collect();
        Ok(Form { pairs })
    }

    /// The first non-empty value of `key`.
    pub fn optional(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, v)| k == key && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    /// The first non-empty value of `key`; a missing one is a parameter error.
    pub fn required(&self, key: &str) -> Result<&str, RongError> {
        self.optional(key).ok_or_else(|| RongError::param(format!("{key} is required")))
    }

    /// Every non-empty value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// `userIds[]` and `userIds[3]` are the list `userIds`.
fn list_name(key: &str) -> &str {
    match key.find('[') {
        Some(at) if key.ends_with(']') => &key[..at],
        _ => key,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn repeated_keys_are_kept_in_order() {
        let form = Form::parse(b"userIds=a&userIds=b%20c&other=x&userIds=").unwrap();
        assert_eq!(form.all("userIds"), ["a", "b c"]);
        assert_eq!(form.required("other").unwrap(), "x");
        assert!(form.required("userId").is_err());
    }

    #[test]
    fn php_style_list_keys() {
        let form = Form::parse(b"userIds%5B%5D=a&userIds[1]=b").unwrap();
        assert_eq!(form.all("userIds"), ["a", "b"]);
    }

    #[test]
    fn empty_body_is_no_post_data() {
        assert!(matches!(Form::parse(b""), Err(RongError::NoPostData)));
        assert!(matches!(Form::parse(b" \n"), Err(RongError::NoPostData)));
    }

    #[test]
    fn plus_is_a_space() {
        let form = Form::parse(b"name=Li+Lei").unwrap();
        assert_eq!(form.optional("name"), Some("Li Lei"));
    }
}
