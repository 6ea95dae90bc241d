//! The targets' settings (ADR 19): `FOREMAN_TARGET_URL` lists the Ollama servers, each
//! `URL` or `NAME=URL`; `FOREMAN_TARGET_PARALLEL` and `FOREMAN_TARGET_TOKEN` take one
//! value for every target or `NAME=VALUE` entries for some. [`Config::targets`] puts the
//! three together, one [`TargetSettings`] per target.

use std::fmt;

use url::Url;

use super::values::http_url;
use super::{Config, ConfigError, Secret};

/// The longest target name.
const MAX_NAME: usize = 64;
/// The most generations one target may be given at once.
pub(crate) const MAX_PARALLEL: u32 = 256;

/// The targets of `FOREMAN_TARGET_URL`, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrls(Vec<TargetUrl>);

/// One entry of `FOREMAN_TARGET_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    /// The name given with `NAME=URL`; `None` for a bare URL.
    pub name: Option<String>,
    /// The Ollama server.
    pub url: Url,
}

impl TargetUrls {
    /// One unnamed target.
    pub fn one(url: Url) -> Self {
        Self(vec![TargetUrl { name: None, url }])
    }

    /// Several targets, `(name, url)`; a `None` name is chosen as for a bare URL.
    pub fn named<I, N>(targets: I) -> Self
    where
        I: IntoIterator<Item = (Option<N>, Url)>,
        N: Into<String>,
    {
        Self(
            targets
                .into_iter()
                .map(|(name, url)| TargetUrl {
                    name: name.map(Into::into),
                    url,
                })
                .collect(),
        )
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[TargetUrl] {
        &self.0
    }

    /// The first target's URL (the only one, in the common case).
    pub fn first(&self) -> Option<&Url> {
        self.0.first().map(|t| &t.url)
    }
}

impl std::str::FromStr for TargetUrls {
    type Err = String;

    /// Reads the form `FOREMAN_TARGET_URL` takes: `URL` or `NAME=URL`, comma-separated.
    fn from_str(raw: &str) -> Result<Self, String> {
        target_urls(raw.trim())
    }
}

impl From<Url> for TargetUrls {
    fn from(url: Url) -> Self {
        Self::one(url)
    }
}

impl fmt::Display for TargetUrls {
    /// The list as it is written, with credentials in URLs left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, entry) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            if let Some(name) = &entry.name {
                write!(f, "{name}=")?;
            }
            f.write_str(&display_url(&entry.url))?;
        }
        Ok(())
    }
}

/// A URL for logs and `/healthz`: without user name, password, query or fragment.
pub(crate) fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.as_str().trim_end_matches('/').to_owned()
}

/// A setting with one value for every target, or values for some targets by name:
/// `4`, `gpu1=4,gpu2=2`, or `1,gpu1=4` (a bare value is the default for the others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerTarget<T> {
    /// The value of targets not named.
    pub default: T,
    /// Values of named targets, in the order given.
    pub named: Vec<(String, T)>,
}

impl<T: Clone> PerTarget<T> {
    /// `value` for every target.
    pub fn all(value: T) -> Self {
        Self {
            default: value,
            named: Vec::new(),
        }
    }

    /// This target's value.
    pub fn get(&self, name: &str) -> T {
        self.named
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| self.default.clone(), |(_, v)| v.clone())
    }
}

impl std::str::FromStr for PerTarget<u32> {
    type Err = String;

    /// Reads the form `FOREMAN_TARGET_PARALLEL` takes: `N`, or `NAME=N` entries.
    fn from_str(raw: &str) -> Result<Self, String> {
        per_target_parallel(raw.trim())
    }
}

/// Everything foreman knows about one target once the settings are put together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSettings {
    /// The name jobs, metrics and `/healthz` show.
    pub name: String,
    /// The Ollama server.
    pub url: Url,
    /// The bearer token foreman sends it.
    pub token: Option<Secret>,
    /// How many generations it runs at once.
    pub parallel: u32,
}

/// Parses `FOREMAN_TARGET_URL`: comma-separated `URL` or `NAME=URL` entries.
pub(crate) fn target_urls(raw: &str) -> Result<TargetUrls, String> {
    let mut entries = Vec::new();
    for item in raw.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(format!("{raw:?} has an empty entry"));
        }
        let (name, url) = match item.split_once('=') {
            Some((name, url)) if !name.contains('/') => {
                check_name(name.trim())?;
                (Some(name.trim().to_owned()), url.trim())
            }
            _ => (None, item),
        };
        entries.push(TargetUrl {
            name,
            url: http_url(url)?,
        });
    }
    Ok(TargetUrls(entries))
}

/// Parses `FOREMAN_TARGET_PARALLEL`: `N`, or `NAME=N` entries with at most one bare `N`.
pub(crate) fn per_target_parallel(raw: &str) -> Result<PerTarget<u32>, String> {
    let count = |text: &str| -> Result<u32, String> {
        let n: u32 = text
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a whole number"))?;
        if n == 0 || n > MAX_PARALLEL {
            return Err(format!("{n} is out of range (1 to {MAX_PARALLEL})"));
        }
        Ok(n)
    };
    let mut setting = PerTarget::all(1);
    let mut bare = false;
    for item in raw.split(',').map(str::trim) {
        match item.split_once('=') {
            Some((name, value)) => {
                let name = name.trim();
                check_name(name)?;
                if setting.named.iter().any(|(n, _)| n == name) {
                    return Err(format!("{name} is given twice"));
                }
                setting.named.push((name.to_owned(), count(value)?));
            }
            None if bare => return Err(format!("{raw:?} has more than one bare number")),
            None => {
                bare = true;
                setting.default = count(item)?;
            }
        }
    }
    Ok(setting)
}

/// A target name: letters, digits, `.`, `_`, `-` and `:` (so `host:port` is one).
fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a target name (1 to {MAX_NAME} letters, digits, '.', '_', '-', ':')"
        ))
    }
}

/// The name of an unnamed target: `default` when it is the only one (as jobs have always
/// recorded), else its `host:port`.
fn default_name(url: &Url, alone: bool) -> String {
    if alone {
        return "default".to_owned();
    }
    let host = url.host_str().unwrap_or("target");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Splits `FOREMAN_TARGET_TOKEN` by target: entries `NAME=TOKEN` whose name is a target's
/// are that target's; when no entry names a target the whole value is one token for all
/// (so a token may hold `,` and `=`); else at most one other entry is the others' token.
fn per_target_token(raw: &Secret, names: &[String]) -> Result<PerTarget<Option<Secret>>, String> {
    let text = raw.expose();
    fn named_entry<'a>(item: &'a str, names: &[String]) -> Option<(&'a str, &'a str)> {
        item.split_once('=')
            .map(|(name, token)| (name.trim(), token.trim()))
            .filter(|(name, _)| names.iter().any(|n| n == name))
    }
    let named_entry =
        |item: &str| named_entry(item, names).map(|(n, t)| (n.to_owned(), t.to_owned()));
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    if !items.iter().any(|item| named_entry(item).is_some()) {
        return Ok(PerTarget::all(Some(raw.clone())));
    }
    let mut setting = PerTarget::all(None);
    for item in items {
        match named_entry(item) {
            Some((name, token)) => {
                if setting.named.iter().any(|(n, _)| *n == name) {
                    return Err(format!("the token of {name} is given twice"));
                }
                let token = (!token.is_empty()).then(|| Secret::new(token));
                setting.named.push((name, token));
            }
            None if setting.default.is_some() => {
                return Err(
                    "more than one entry names no target (write NAME=TOKEN for each)".into(),
                )
            }
            None if item.is_empty() => {}
            None => setting.default = Some(Secret::new(item)),
        }
    }
    Ok(setting)
}

impl Config {
    /// The targets, each with its name, URL, token and parallelism, in the order of
    /// `FOREMAN_TARGET_URL`.
    ///
    /// # Errors
    /// Two targets with one name or one URL, or a per-target value for a name that is no
    /// target's; the error names the variable at fault.
    pub fn targets(&self) -> Result<Vec<TargetSettings>, ConfigError> {
        let entries = self.target_url.entries();
        if entries.is_empty() {
            return Err(ConfigError::new("FOREMAN_TARGET_URL", "no target is given"));
        }
        let alone = entries.len() == 1;
        let mut names: Vec<String> = Vec::with_capacity(entries.len());
        for entry in entries {
            let name = entry
                .name
                .clone()
                .unwrap_or_else(|| default_name(&entry.url, alone));
            if names.contains(&name) {
                return Err(ConfigError::new(
                    "FOREMAN_TARGET_URL",
                    format!("two targets are named {name:?} (name them with NAME=URL)"),
                ));
            }
            names.push(name);
        }
        for (index, entry) in entries.iter().enumerate() {
            if entries[..index].iter().any(|e| e.url == entry.url) {
                return Err(ConfigError::new(
                    "FOREMAN_TARGET_URL",
                    format!("{} is listed twice", display_url(&entry.url)),
                ));
            }
        }
        for (name, _) in &self.target_parallel.named {
            if !names.contains(name) {
                return Err(ConfigError::new(
                    "FOREMAN_TARGET_PARALLEL",
                    format!("{name:?} is not the name of a target"),
                ));
            }
        }
        let tokens = match &self.target_token {
            Some(raw) => per_target_token(raw, &names)
                .map_err(|message| ConfigError::new("FOREMAN_TARGET_TOKEN", message))?,
            None => PerTarget::all(None),
        };
        Ok(entries
            .iter()
            .zip(names)
            .map(|(entry, name)| TargetSettings {
                token: tokens.get(&name),
                parallel: self.target_parallel.get(&name),
                url: entry.url.clone(),
                name,
            })
            .collect())
    }
}
