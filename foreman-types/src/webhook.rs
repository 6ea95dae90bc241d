//! Signing and verifying webhook deliveries.
//!
//! foreman signs every delivery twice, so both kinds of receiver can check it:
//! - the prototype's `X-Foreman-Signature: sha256=<hex>`, an HMAC-SHA256 of the raw body (the
//!   scheme of GitHub's `X-Hub-Signature-256`), kept for receivers written against the
//!   prototype;
//! - the [Standard Webhooks](https://www.standardwebhooks.com/) headers `webhook-id`,
//!   `webhook-timestamp` and `webhook-signature: v1,<base64>`, an HMAC-SHA256 of
//!   `"{id}.{timestamp}.{body}"`. The timestamp is checked against a tolerance window, which
//!   gives receivers replay protection.
//!
//! The Standard Webhooks key is the secret's bytes or, for a secret written `whsec_<base64>`,
//! the decoded bytes (that standard's convention). The prototype's format is keyed with the
//! secret exactly as written, as the prototype's receivers compute it. Signatures are compared in
//! constant time, and no input makes verification panic.
//!
//! ```
//! use foreman_types::Webhook;
//!
//! let webhook = Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//! let body = br#"{"type":"job.state","state":"done"}"#;
//! let signed = webhook.headers("01JB3Q5Z8X0000000000000000", 1_700_000_000, body);
//!
//! let headers = signed.to_header_map()?;
//! webhook.verify_at(body, &headers, 1_700_000_010)?;
//! webhook.verify_legacy(body, &signed.foreman_signature)?;
//! # Ok::<(), foreman_types::SignatureError>(())
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Length in bytes of an HMAC-SHA256 signature.
const SIGNATURE_LEN: usize = 32;

/// The prototype's signature header: `sha256=<lowercase hex HMAC-SHA256(key, body)>`.
pub const FOREMAN_SIGNATURE_HEADER: &str = "x-foreman-signature";
/// The Standard Webhooks message id header, stable across retries of one delivery.
pub const WEBHOOK_ID_HEADER: &str = "webhook-id";
/// The Standard Webhooks timestamp header, in unix seconds.
pub const WEBHOOK_TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The Standard Webhooks signature header: space-separated `v1,<base64>` signatures.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "webhook-signature";
/// How far a `webhook-timestamp` may be from the receiver's clock, either way: 5 minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Prefix of a secret written in the Standard Webhooks form, `whsec_<base64 key>`.
const WHSEC_PREFIX: &str = "whsec_";
/// Prefix of the value of [`FOREMAN_SIGNATURE_HEADER`].
const LEGACY_PREFIX: &str = "sha256=";

/// Why a secret was refused or a delivery failed verification.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum SignatureError {
    /// The secret is empty, or `whsec_` with nothing after it.
    #[error("the webhook secret is empty")]
    EmptySecret,
    /// The secret starts with `whsec_` but the rest is not valid base64.
    #[error("the webhook secret starts with whsec_ but the rest is not valid base64")]
    InvalidSecret,
    /// A required header is absent (or, for `X-Foreman-Signature`, empty).
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is present but cannot be parsed; the payload names the header.
    #[error("malformed header {0}")]
    MalformedHeader(&'static str),
    /// `webhook-timestamp` is further in the past than the tolerance allows.
    #[error("the webhook timestamp is too old")]
    TimestampTooOld,
    /// `webhook-timestamp` is further in the future than the tolerance allows.
    #[error("the webhook timestamp is too far in the future")]
    TimestampInFuture,
    /// The headers are well formed but no signature matches the body.
    #[error("no signature matches the body")]
    Mismatch,
}

/// A webhook key: signs deliveries (the server) and verifies them (receivers).
///
/// Build it once from the secret with [`Webhook::new`]; it is cheap to clone. Its `Debug`
/// output never shows the key.
#[derive(Clone)]
pub struct Webhook {
    /// HMAC state already keyed with the Standard Webhooks key; cloned for every signature.
    mac: HmacSha256,
    /// HMAC state keyed with the secret as written, for `X-Foreman-Signature`.
    legacy_mac: HmacSha256,
    tolerance: Duration,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("key", &"[redacted]")
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl Webhook {
    /// Builds a webhook key from a secret, with the [`DEFAULT_TOLERANCE`].
    ///
    /// A secret written `whsec_<base64>` is decoded to its key bytes; any other secret is used
    /// as its UTF-8 bytes.
    ///
    /// # Errors
    /// [`SignatureError::EmptySecret`] for an empty secret (or an empty `whsec_` key), and
    /// [`SignatureError::InvalidSecret`] when the part after `whsec_` is not valid base64.
    pub fn new(secret: &str) -> Result<Self, SignatureError> {
        let key = match secret.strip_prefix(WHSEC_PREFIX) {
            Some(encoded) => BASE64
                .decode(encoded)
                .map_err(|_| SignatureError::InvalidSecret)?,
            None => secret.as_bytes().to_vec(),
        };
        if key.is_empty() {
            return Err(SignatureError::EmptySecret);
        }
        // HMAC takes keys of any length, so this cannot fail; mapping the error keeps the
        // constructor free of panics all the same.
        let mac = HmacSha256::new_from_slice(&key).map_err(|_| SignatureError::InvalidSecret)?;
        let legacy_mac = HmacSha256::new_from_slice(secret.as_bytes())
            .map_err(|_| SignatureError::InvalidSecret)?;
        Ok(Self {
            mac,
            legacy_mac,
            tolerance: DEFAULT_TOLERANCE,
        })
    }

    /// Sets how far `webhook-timestamp` may be from the receiver's clock, either way.
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The tolerance window [`verify`](Self::verify) applies to `webhook-timestamp`.
    pub fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// The Standard Webhooks signature of a delivery: `v1,<base64>`, the value of
    /// [`WEBHOOK_SIGNATURE_HEADER`].
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mac = self.standard_mac(msg_id.as_bytes(), timestamp.to_string().as_bytes(), body);
        format!("v1,{}", BASE64.encode(mac))
    }

    /// The prototype's signature of a body: `sha256=<lowercase hex>`, the value of
    /// [`FOREMAN_SIGNATURE_HEADER`]. Keyed with the secret exactly as written (a `whsec_` secret is not decoded here), as the
    /// prototype's receivers compute it.
    pub fn sign_legacy(&self, body: &[u8]) -> String {
        let mut mac = self.legacy_mac.clone();
        mac.update(body);
        format!(
            "{LEGACY_PREFIX}{}",
            hex::encode(mac.finalize().into_bytes())
        )
    }

    /// Every header a sender sets on a delivery, both formats at once.
    pub fn headers(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> SignedHeaders {
        SignedHeaders {
            webhook_id: msg_id.to_owned(),
            webhook_timestamp: timestamp.to_string(),
            webhook_signature: self.sign(msg_id, timestamp, body),
            foreman_signature: self.sign_legacy(body),
        }
    }

    /// Verifies the Standard Webhooks headers of a delivery against the system clock.
    ///
    /// # Errors
    /// As [`verify_at`](Self::verify_at).
    pub fn verify(&self, body: &[u8], headers: &HeaderMap) -> Result<(), SignatureError> {
        self.verify_at(body, headers, unix_now())
    }

    /// Verifies the Standard Webhooks headers of a delivery, with `now` in unix seconds.
    ///
    /// The delivery is accepted when its timestamp is within the tolerance of `now` and any
    /// one of its `v1` signatures matches; signatures of other versions are ignored.
    ///
    /// # Errors
    /// [`SignatureError::MissingHeader`] or [`SignatureError::MalformedHeader`] naming the
    /// header at fault (a `webhook-signature` holding no well-formed `v1` signature is
    /// malformed), [`SignatureError::TimestampTooOld`] or
    /// [`SignatureError::TimestampInFuture`] outside the tolerance window, and
    /// [`SignatureError::Mismatch`] when no signature matches.
    pub fn verify_at(
        &self,
        body: &[u8],
        headers: &HeaderMap,
        now: i64,
    ) -> Result<(), SignatureError> {
        let msg_id = required(headers, WEBHOOK_ID_HEADER)?;
        let timestamp = required(headers, WEBHOOK_TIMESTAMP_HEADER)?;
        required(headers, WEBHOOK_SIGNATURE_HEADER)?;

        if msg_id.is_empty() {
            return Err(SignatureError::MalformedHeader(WEBHOOK_ID_HEADER));
        }
        let sent_at = timestamp
            .to_str()
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or(SignatureError::MalformedHeader(WEBHOOK_TIMESTAMP_HEADER))?;
        let tolerance = i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        if now.saturating_sub(sent_at) > tolerance {
            return Err(SignatureError::TimestampTooOld);
        }
        if sent_at.saturating_sub(now) > tolerance {
            return Err(SignatureError::TimestampInFuture);
        }

        // The id and timestamp are signed as sent, byte for byte.
        let expected = self.standard_mac(msg_id.as_bytes(), timestamp.as_bytes(), body);
        let mut checked_any = false;
        for value in headers.get_all(WEBHOOK_SIGNATURE_HEADER) {
            // A value that is not visible ASCII cannot hold base64; skip it like any other
            // entry we cannot read, so one bad entry does not hide a good one.
            let Ok(value) = value.to_str() else { continue };
            for entry in value.split_ascii_whitespace() {
                let Some(candidate) = decode_v1(entry) else {
                    continue;
                };
                checked_any = true;
                if bool::from(candidate.ct_eq(&expected)) {
                    return Ok(());
                }
            }
        }
        if checked_any {
            Err(SignatureError::Mismatch)
        } else {
            Err(SignatureError::MalformedHeader(WEBHOOK_SIGNATURE_HEADER))
        }
    }

    /// Verifies the value of an `X-Foreman-Signature` header, `sha256=<hex>`, against a body.
    ///
    /// # Errors
    /// [`SignatureError::MissingHeader`] for an empty value,
    /// [`SignatureError::MalformedHeader`] when it is not `sha256=` and 64 hex digits, and
    /// [`SignatureError::Mismatch`] when it does not match the body.
    pub fn verify_legacy(&self, body: &[u8], header_value: &str) -> Result<(), SignatureError> {
        let header_value = header_value.trim();
        if header_value.is_empty() {
            return Err(SignatureError::MissingHeader(FOREMAN_SIGNATURE_HEADER));
        }
        let mut signature = [0_u8; SIGNATURE_LEN];
        header_value
            .strip_prefix(LEGACY_PREFIX)
            .and_then(|digits| hex::decode_to_slice(digits, &mut signature).ok())
            .ok_or(SignatureError::MalformedHeader(FOREMAN_SIGNATURE_HEADER))?;
        let mut mac = self.legacy_mac.clone();
        mac.update(body);
        mac.verify_slice(&signature)
            .map_err(|_| SignatureError::Mismatch)
    }

    /// HMAC-SHA256 of `"{id}.{timestamp}.{body}"`, fed piece by piece rather than concatenated.
    fn standard_mac(&self, msg_id: &[u8], timestamp: &[u8], body: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut mac = self.mac.clone();
        mac.update(msg_id);
        mac.update(b".");
        mac.update(timestamp);
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

/// The headers a sender sets on a signed delivery, as strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// Value of [`WEBHOOK_ID_HEADER`].
    pub webhook_id: String,
    /// Value of [`WEBHOOK_TIMESTAMP_HEADER`], unix seconds.
    pub webhook_timestamp: String,
    /// Value of [`WEBHOOK_SIGNATURE_HEADER`], `v1,<base64>`.
    pub webhook_signature: String,
    /// Value of [`FOREMAN_SIGNATURE_HEADER`], `sha256=<hex>`.
    pub foreman_signature: String,
}

impl SignedHeaders {
    /// The headers as `(name, value)` pairs, names in lowercase.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (WEBHOOK_ID_HEADER, self.webhook_id.as_str()),
            (WEBHOOK_TIMESTAMP_HEADER, self.webhook_timestamp.as_str()),
            (WEBHOOK_SIGNATURE_HEADER, self.webhook_signature.as_str()),
            (FOREMAN_SIGNATURE_HEADER, self.foreman_signature.as_str()),
        ]
        .into_iter()
    }

    /// The headers as an [`http::HeaderMap`], ready for an HTTP client.
    ///
    /// # Errors
    /// [`SignatureError::MalformedHeader`] when a value cannot be an HTTP header value, which
    /// only a message id holding control characters can cause.
    pub fn to_header_map(&self) -> Result<HeaderMap, SignatureError> {
        let mut map = HeaderMap::with_capacity(4);
        for (name, value) in self.iter() {
            let value =
                HeaderValue::from_str(value).map_err(|_| SignatureError::MalformedHeader(name))?;
            map.insert(HeaderName::from_static(name), value);
        }
        Ok(map)
    }
}

/// Checks an `X-Foreman-Signature` value (`sha256=<hex>`) against a body with a secret; the
/// prototype's receiver API, kept as a shortcut for `Webhook::new(secret)?.verify_legacy(..)`.
///
/// # Errors
/// As [`Webhook::new`] and [`Webhook::verify_legacy`].
pub fn verify_signature(
    secret: &str,
    body: &[u8],
    header_value: &str,
) -> Result<(), SignatureError> {
    Webhook::new(secret)?.verify_legacy(body, header_value)
}

/// The first value of a header that must be present.
fn required<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> Result<&'h HeaderValue, SignatureError> {
    headers.get(name).ok_or(SignatureError::MissingHeader(name))
}

/// The raw signature of a `v1,<base64>` entry; `None` for other versions and malformed entries.
fn decode_v1(entry: &str) -> Option<[u8; SIGNATURE_LEN]> {
    let (version, encoded) = entry.split_once(',')?;
    // Base64 of 32 bytes is 44 characters; refusing longer ones first bounds the work.
    if version != "v1" || encoded.len() != 44 {
        return None;
    }
    BASE64.decode(encoded).ok()?.try_into().ok()
}

/// Seconds since the unix epoch, negative if the clock is set before it.
fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}
