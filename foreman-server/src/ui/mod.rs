//! The status page at `/ui`: its embedded assets, the browser sessions that log in to it
//! and the last hour of queue figures its plots draw. The routes are in `routes/ui.rs`.
//!
//! The page is plain HTML, CSS and JavaScript compiled into the binary with
//! `include_str!`: no build step, nothing fetched at run time.

pub(crate) mod changes;
pub(crate) mod history;
pub(crate) mod sessions;
pub(crate) mod snapshot;

/// The dashboard, served to a caller the page knows.
pub(crate) const DASHBOARD_HTML: &str = include_str!("dashboard.html");
/// The login form, served until the browser holds a session.
pub(crate) const LOGIN_HTML: &str = include_str!("login.html");
/// The page's style sheet.
pub(crate) const STYLE_CSS: &str = include_str!("style.css");
/// The page's script: reads `/ui/events` and draws each snapshot.
pub(crate) const APP_JS: &str = include_str!("app.js");
/// The page's icon, so browsers do not ask for a missing `/favicon.ico`.
pub(crate) const FAVICON_SVG: &str = include_str!("favicon.svg");
