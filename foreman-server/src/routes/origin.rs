//! Which web pages may call foreman from a browser (ADR 22).
//!
//! Ollama refuses requests whose `Origin` is not a local page or one listed in
//! `OLLAMA_ORIGINS`; foreman calls Ollama without an `Origin`, so it must make the same
//! check itself, or any page a user visits could drive the GPU box through foreman (on an
//! open foreman, as an admin: create keys, pull models). Clients that are not browsers send
//! no `Origin` and are not affected.

use axum::http::{header, HeaderMap};
use url::Url;

/// Schemes of local apps and editors whose pages Ollama accepts by default.
const LOCAL_APP_SCHEMES: [&str; 5] = ["app", "file", "tauri", "vscode-webview", "vscode-file"];

/// Hosts whose pages Ollama accepts by default, on any port.
const LOCAL_HOSTS: [&str; 4] = ["localhost", "127.0.0.1", "[::1]", "0.0.0.0"];

/// Whether a request from a browser page is allowed; requests without `Origin` are.
pub(super) fn allowed(headers: &HeaderMap, extra: Option<&str>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim();
    if let Some(extra) = extra {
        let listed = extra.split(',').map(str::trim);
        if listed
            .clone()
            .any(|o| o == "*" || o.trim_end_matches('/') == origin)
        {
            return true;
        }
    }
    let Ok(url) = Url::parse(origin) else {
        return false;
    };
    if LOCAL_APP_SCHEMES.contains(&url.scheme()) {
        return true;
    }
    if !matches!(url.scheme(), "http" | "https") {
        return false;
    }
    let host = url.host_str().unwrap_or_default();
    if LOCAL_HOSTS.contains(&host) {
        return true;
    }
    // foreman's own pages (the status page): the origin names the host the request is for.
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.eq_ignore_ascii_case(&authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(origin: &str, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, origin.parse().unwrap());
        headers.insert(header::HOST, host.parse().unwrap());
        headers
    }

    #[test]
    fn clients_that_send_no_origin_are_allowed() {
        assert!(allowed(&HeaderMap::new(), None));
    }

    #[test]
    fn local_pages_and_foremans_own_are_allowed() {
        for origin in [
            "http://localhost:3000",
            "https://127.0.0.1",
            "http://0.0.0.0:8080",
            "app://obsidian.md",
            "vscode-webview://abc",
        ] {
            assert!(allowed(&from(origin, "gpu.lan:8080"), None), "{origin}");
        }
        assert!(allowed(&from("http://gpu.lan:8080", "gpu.lan:8080"), None));
    }

    #[test]
    fn other_pages_are_refused_unless_listed() {
        let evil = from("https://evil.example", "127.0.0.1:8080");
        assert!(!allowed(&evil, None));
        assert!(!allowed(&from("null", "127.0.0.1:8080"), None));
        assert!(!allowed(&from("http://gpu.lan:9999", "gpu.lan:8080"), None));
        assert!(allowed(
            &evil,
            Some("https://chat.example, https://evil.example")
        ));
        assert!(allowed(&evil, Some("*")));
        assert!(!allowed(&evil, Some("https://chat.example")));
    }
}
