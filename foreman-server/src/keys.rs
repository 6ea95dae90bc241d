//! API keys: making secrets, their digests, and the in-memory set the auth path reads.
//!
//! A secret is `fm_` and 43 characters of URL-safe base64: 32 bytes from the operating
//! system's random source. Only its SHA-256 digest is stored (ADR 18): with 256 bits of
//! entropy a fast hash is as good as a slow one, and it lets a request be authenticated
//! with one hash and one map lookup, never a database read. [`Keys`] holds every key by
//! digest; the admin routes change it in the same breath as the database, so a revoked
//! key fails on its very next request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use foreman_types::ApiKey;
use sha2::{Digest, Sha256};

/// The key name `FOREMAN_AUTH_TOKEN` goes by, in usage and job ownership; reserved.
pub(crate) const TOKEN_KEY_NAME: &str = "admin";

/// What every secret starts with, so a leaked one is recognisable (secret scanners,
/// logs) and a foreman key is never mistaken for another service's.
pub(crate) const SECRET_PREFIX: &str = "fm_";

/// Characters of the secret kept as its `prefix`: `fm_` and four more.
const SHOWN_PREFIX: usize = SECRET_PREFIX.len() + 4;

/// A SHA-256 digest of a secret.
pub(crate) type KeyHash = [u8; 32];

/// A stored key: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRecord {
    pub name: String,
    pub hash: KeyHash,
    pub prefix: String,
    pub admin: bool,
    pub weight: u32,
    pub max_queued: Option<u32>,
    pub rpm: Option<u32>,
    pub trust_user_header: bool,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl KeyRecord {
    /// The key as the API shows it.
    pub(crate) fn view(&self) -> ApiKey {
        ApiKey {
            name: self.name.clone(),
            admin: self.admin,
            weight: self.weight,
            max_queued: self.max_queued,
            rpm: self.rpm,
            trust_user_header: self.trust_user_header,
            prefix: self.prefix.clone(),
            created_at: chrono::DateTime::from_timestamp_millis(self.created_at)
                .unwrap_or_default(),
        }
    }
}

/// A new secret, its digest and its shown prefix. Fails only if the operating system
/// cannot supply random bytes.
pub(crate) fn new_secret() -> Result<(String, KeyHash, String), getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let secret = format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let prefix = secret[..SHOWN_PREFIX].to_owned();
    Ok((secret.clone(), digest(&secret), prefix))
}

/// The digest a secret is stored and looked up by.
pub(crate) fn digest(secret: &str) -> KeyHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether `name` may name a key: 1 to 64 letters, digits, `.`, `_`, `-`, and not the
/// name `FOREMAN_AUTH_TOKEN` goes by.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !valid {
        return Err(format!(
            "a key name is 1 to 64 letters, digits, '.', '_' or '-' (got {:?})",
            name.chars().take(80).collect::<String>()
        ));
    }
    if name == TOKEN_KEY_NAME {
        return Err(format!(
            "the key name {name:?} is reserved for FOREMAN_AUTH_TOKEN"
        ));
    }
    Ok(())
}

/// Every key, by digest: what authentication reads, in memory.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    by_hash: RwLock<HashMap<KeyHash, Arc<KeyRecord>>>,
}

impl Keys {
    /// The set holding `keys`, as loaded at start-up.
    pub(crate) fn new(keys: Vec<KeyRecord>) -> Self {
        let by_hash = keys.into_iter().map(|k| (k.hash, Arc::new(k))).collect();
        Self {
            by_hash: RwLock::new(by_hash),
        }
    }

    /// The key whose secret this is.
    pub(crate) fn find(&self, secret: &str) -> Option<Arc<KeyRecord>> {
        let hash = digest(secret);
        self.read(|keys| keys.get(&hash).cloned())
    }

    /// Whether no key exists: then, without `FOREMAN_AUTH_TOKEN`, foreman is open.
    pub(crate) fn is_empty(&self) -> bool {
        self.read(HashMap::is_empty)
    }

    /// Adds a key just committed to the database.
    pub(crate) fn insert(&self, key: KeyRecord) {
        self.write(|keys| {
            keys.insert(key.hash, Arc::new(key));
        });
    }

    /// Replaces every key with `keys`, as just read from the database (another replica
    /// may have created or revoked some).
    pub(crate) fn replace(&self, keys: Vec<KeyRecord>) {
        let by_hash = keys.into_iter().map(|k| (k.hash, Arc::new(k))).collect();
        self.write(|keys| *keys = by_hash);
    }

    /// Removes the key named `name`, just deleted from the database.
    pub(crate) fn remove(&self, name: &str) {
        self.write(|keys| keys.retain(|_, key| key.name != name));
    }

    fn read<T>(&self, f: impl FnOnce(&HashMap<KeyHash, Arc<KeyRecord>>) -> T) -> T {
        // A panic while holding the lock cannot leave the map half-changed (each change
        // is one insert or one retain), so a poisoned lock is still a good map.
        let keys = crate::lock::read(&self.by_hash);
        f(&keys)
    }

    fn write(&self, f: impl FnOnce(&mut HashMap<KeyHash, Arc<KeyRecord>>)) {
        let mut keys = crate::lock::write(&self.by_hash);
        f(&mut keys);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, secret: &str) -> KeyRecord {
        KeyRecord {
            name: name.into(),
            hash: digest(secret),
            prefix: secret[..SHOWN_PREFIX].into(),
            admin: false,
            weight: 1,
            max_queued: None,
            rpm: None,
            trust_user_header: false,
            created_at: 0,
        }
    }

    #[test]
    fn secrets_are_prefixed_distinct_and_found_by_their_digest_only() {
        let (a, hash_a, prefix_a) = new_secret().unwrap();
        let (b, _, _) = new_secret().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("fm_") && a.len() == 3 + 43, "{a}");
        assert_eq!(hash_a, digest(&a));
        assert!(a.starts_with(&prefix_a) && prefix_a.len() == 7);

        let keys = Keys::new(vec![record("alice", &a)]);
        assert_eq!(keys.find(&a).unwrap().name, "alice");
        assert!(keys.find(&b).is_none());
        assert!(keys.find(&prefix_a).is_none());
        keys.insert(record("bob", &b));
        keys.remove("alice");
        assert!(keys.find(&a).is_none());
        assert_eq!(keys.find(&b).unwrap().name, "bob");
        keys.remove("bob");
        assert!(keys.is_empty());
    }

    #[test]
    fn key_names_are_short_plain_and_not_the_tokens() {
        for good in ["alice", "team-a.batch_2", &"x".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "ünï", "a/b", &"x".repeat(65), "admin"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
