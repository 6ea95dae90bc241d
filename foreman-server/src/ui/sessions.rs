//! Browser sessions of the status page: an opaque random id, held in an `HttpOnly`
//! cookie, mapped in memory to the caller who logged in. The key's secret is never kept
//! or sent back; a restart logs every browser out, which is the safe default.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::routes::Caller;

/// The cookie that carries the session id.
pub(crate) const COOKIE: &str = "foreman_ui";
/// How long a session lasts after login.
pub(crate) const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// Most sessions kept at once; the oldest goes first, so logins cannot grow memory.
const MAX_SESSIONS: usize = 1024;

#[derive(Debug)]
struct Session {
    caller: Caller,
    expires: Instant,
}

/// Every live session, by id.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session for `caller`; its id, or `None` if no randomness is available.
    pub(crate) fn open(&self, caller: Caller) -> Option<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).ok()?;
        let id = hex::encode(bytes);
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            id.clone(),
            Session {
                caller,
                expires: now + LIFETIME,
            },
        );
        Some(id)
    }

    /// The caller of the live session `id`.
    pub(crate) fn find(&self, id: &str) -> Option<Caller> {
        let mut sessions = self.lock();
        match sessions.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.caller.clone()),
            Some(_) => {
                sessions.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends the session `id`, if it exists.
    pub(crate) fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Ends every session of the key named `key` (it was revoked).
    pub(crate) fn close_key(&self, key: &str) {
        self.lock().retain(|_, s| s.caller.key != key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // Each change is one insert, remove or retain: a poisoned map is still whole.
        crate::lock::lock(&self.by_id)
    }
}

/// The session id in a request's `Cookie` headers.
pub(crate) fn cookie_of(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_names_its_caller_until_closed() {
        let sessions = Sessions::default();
        let id = sessions.open(Caller::open()).unwrap();
        assert_eq!(id.len(), 64);
        assert_eq!(sessions.find(&id), Some(Caller::open()));
        assert_eq!(sessions.find("nope"), None);
        sessions.close(&id);
        assert_eq!(sessions.find(&id), None);
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("cookie", "a=1; foreman_ui=abc ; b=2".parse().unwrap());
        assert_eq!(cookie_of(&headers), Some("abc"));
        headers.insert("cookie", "foreman_ui=".parse().unwrap());
        assert_eq!(cookie_of(&headers), None);
    }
}
