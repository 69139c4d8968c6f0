//! A browser for the console's pages, reduced to what tests need: cookies and the CSRF token.

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::{Method, Response};

use super::{AppCreds, Herald};

/// A browser, reduced to what the console needs: its cookies and the page's CSRF token.
pub struct Browser {
    pub http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
    /// The CSRF token of the last page that had a form.
    pub csrf: String,
}

impl Browser {
    pub fn new(herald: &Herald) -> Self {
        let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
        Browser { http, base: herald.url("/console/"), cookies: Vec::new(), csrf: String::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep_cookies(&mut self, res: &Response) {
        for value in res.headers().get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> (Page, String) {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (Page, String) {
        let req = self.http.request(Method::POST, format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> (Page, String) {
        let res = req.header("cookie", self.cookie_header()).send().await.unwrap();
        self.keep_cookies(&res);
        let page = Page { status: res.status().as_u16(), headers: res.headers().clone() };
        let body = res.text().await.unwrap();
        if let Some(csrf) = csrf_of(&body) {
            self.csrf = csrf;
        }
        (page, body)
    }

    /// Posts a form as the page's own form would: with the CSRF token of the last page.
    pub async fn submit(&mut self, path: &str, form: &[(&str, &str)]) -> (Page, String) {
        let csrf = self.csrf.clone();
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(path, &fields).await
    }

    pub async fn sign_in(&mut self, fields: &[(&str, &str)]) -> (Page, String) {
        self.get("signin").await;
        let csrf = self.csrf.clone();
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post("signin", &form).await
    }

    pub async fn sign_in_app(&mut self, app: &AppCreds) {
        let (res, _) = self.sign_in(&[("app_key", &app.key), ("app_secret", &app.secret)]).await;
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()[LOCATION], "./");
    }
}

/// What a test looks at in an answer besides its body.
pub struct Page {
    status: u16,
    headers: HeaderMap,
}

impl Page {
    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

pub fn csrf_of(body: &str) -> Option<String> {
    let at = body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(body[at..].chars().take_while(|c| c.is_ascii_hexdigit()).collect())
}
