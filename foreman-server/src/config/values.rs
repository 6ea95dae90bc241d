//! How a setting's text becomes its value: one parser per kind of value, and the
//! [`Setting`] wrapper that gives them all foreman's rules.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use url::Url;

use super::{ConfigError, Secret};

/// A setting's parser, as clap calls it for a flag and for a variable alike: it trims the
/// value, reads an empty one as unset (the setting's default, or none), and answers a bad
/// one with `VARIABLE: what is wrong`, whichever of the two the value came from.
#[derive(Clone)]
pub(crate) struct Setting<T>(Arc<Parse<T>>);

/// A value's text to the value, or to what is wrong with it.
type Parse<T> = dyn Fn(&str) -> Result<T, String> + Send + Sync;

/// A setting parsed by `parse`.
pub(crate) fn setting<T>(
    parse: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static,
) -> Setting<T> {
    Setting(Arc::new(parse))
}

/// A setting without a default: empty means none. Its field is spelled
/// `std::option::Option`, which tells clap's derive to leave the `Option` to this parser
/// (a plain `Option` would hand the parser only what is inside it, and an empty variable
/// would then be an empty token rather than no token); `default_value = ""` makes unset
/// and empty the same.
pub(crate) fn optional<T>(
    parse: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static,
) -> Setting<Option<T>> {
    setting(move |raw| match raw {
        "" => Ok(None),
        raw => parse(raw).map(Some),
    })
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Setting<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let fail = |message: String| {
            let variable = arg
                .and_then(clap::Arg::get_env)
                .map(|name| name.to_string_lossy().into_owned())
                .or_else(|| arg.map(ToString::to_string))
                .unwrap_or_default();
            let err = ConfigError::new(variable, message);
            let mut error = clap::Error::raw(ErrorKind::ValueValidation, format!("{err}"))
                .format(&mut cmd.clone());
            // What `ConfigError::from_clap` reads back.
            error.insert(ContextKind::InvalidArg, ContextValue::String(err.variable));
            error.insert(ContextKind::Custom, ContextValue::String(err.message));
            error
        };
        let raw = value
            .to_str()
            .ok_or_else(|| fail(format!("{value:?} is not valid UTF-8")))?
            .trim();
        let raw = match raw {
            "" => arg
                .and_then(|arg| arg.get_default_values().first())
                .and_then(|default| default.to_str())
                .unwrap_or(""),
            raw => raw,
        };
        (self.0)(raw).map_err(fail)
    }
}

/// Parses `1500ms`, `30s`, `5m`, `24h` (and combinations such as `1h30m`); zero too.
pub(crate) fn duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw)
        .map_err(|_| format!("{raw:?} is not a duration (use e.g. 1500ms, 30s, 5m, 24h)"))
}

/// A duration of more than zero.
pub(crate) fn positive_duration(raw: &str) -> Result<Duration, String> {
    match duration(raw)? {
        zero if zero.is_zero() => Err("must be more than zero".into()),
        duration => Ok(duration),
    }
}

/// Parses a duration for a setting outside [`Config`](super::Config) (the simulator's
/// flags), naming `variable` when it cannot.
pub fn parse_duration(
    variable: &'static str,
    raw: &str,
    positive: bool,
) -> Result<Duration, ConfigError> {
    let raw = raw.trim();
    let parsed = if positive {
        positive_duration(raw)
    } else {
        duration(raw)
    };
    parsed.map_err(|message| ConfigError::new(variable, message))
}

/// A whole number from `min` to `max`.
pub(crate) fn number<T: TryFrom<u64>>(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<T, String> + Send + Sync + 'static {
    move |raw| {
        let n: u64 = raw
            .parse()
            .map_err(|_| format!("{raw:?} is not a whole number"))?;
        if n < min || n > max {
            return Err(format!("{n} is out of range ({min} to {max})"));
        }
        T::try_from(n).map_err(|_| format!("{n} is too large for this machine"))
    }
}

/// `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.
pub(crate) fn boolean(raw: &str) -> Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{raw:?} is not true or false")),
    }
}

/// An IP address and port.
pub(crate) fn address(raw: &str) -> Result<SocketAddr, String> {
    raw.parse()
        .map_err(|_| format!("{raw:?} is not an address like 127.0.0.1:8080"))
}

/// An `http://` or `https://` URL with a host and no query or fragment: paths are
/// appended to it, which a query would swallow.
pub(crate) fn http_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "{raw:?} must be an http:// or https:// URL with a host"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a URL here takes no query (?...) or fragment (#...)".to_owned());
    }
    Ok(url)
}

/// The base of links to foreman: an HTTP URL, without its trailing `/`.
pub(crate) fn base_url(raw: &str) -> Result<String, String> {
    let url = http_url(raw)?;
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Any text, as given.
pub(crate) fn text(raw: &str) -> Result<String, String> {
    Ok(raw.to_owned())
}

/// A file path.
pub(crate) fn path(raw: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(raw))
}

/// A token or secret.
pub(crate) fn secret(raw: &str) -> Result<Secret, String> {
    Ok(Secret::new(raw))
}

/// A PostgreSQL connection URL (its password stays secret).
pub(crate) fn postgres_url(raw: &str) -> Result<Secret, String> {
    if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://")) {
        return Err("must be a postgres:// URL".into());
    }
    raw.parse::<tokio_postgres::Config>()
        .map_err(|err| format!("not a PostgreSQL URL: {err}"))?;
    Ok(Secret::new(raw))
}

/// A replica lease: long enough to survive a slow heartbeat (at least a second).
pub(crate) fn lease(raw: &str) -> Result<Duration, String> {
    match duration(raw)? {
        short if short < Duration::from_secs(1) => Err("must be at least 1s".into()),
        lease => Ok(lease),
    }
}

/// A webhook signing secret: any text, or `whsec_` and valid base64.
pub(crate) fn webhook_secret(raw: &str) -> Result<Secret, String> {
    foreman_types::Webhook::new(raw).map_err(|e| e.to_string())?;
    Ok(Secret::new(raw))
}
