//! Webhook signing and verification: published test vectors, malformed input, round trips.

use std::time::Duration;

use foreman_types::{
    verify_signature, SignatureError, Webhook, DEFAULT_TOLERANCE, FOREMAN_SIGNATURE_HEADER,
    WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER,
};
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

// GitHub's documented X-Hub-Signature-256 example.
const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const GITHUB_BODY: &[u8] = b"Hello, World!";
const GITHUB_SIGNATURE: &str =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

// The Standard Webhooks libraries' shared test vector.
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SW_TIMESTAMP: i64 = 1_614_265_330;
const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SW_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn reference() -> Webhook {
    Webhook::new(SW_SECRET).expect("the reference secret is valid")
}

fn headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert(WEBHOOK_ID_HEADER, HeaderValue::from_str(id).unwrap());
    map.insert(
        WEBHOOK_TIMESTAMP_HEADER,
        HeaderValue::from_str(timestamp).unwrap(),
    );
    map.insert(
        WEBHOOK_SIGNATURE_HEADER,
        HeaderValue::from_str(signature).unwrap(),
    );
    map
}

fn reference_headers_with_signature(signature: &str) -> HeaderMap {
    headers(SW_ID, &SW_TIMESTAMP.to_string(), signature)
}

fn verify_reference(map: &HeaderMap) -> Result<(), SignatureError> {
    reference().verify_at(SW_BODY, map, SW_TIMESTAMP)
}

// ---- published vectors ----

#[test]
fn legacy_signature_matches_githubs_published_example() {
    let webhook = Webhook::new(GITHUB_SECRET).unwrap();

    assert_eq!(webhook.sign_legacy(GITHUB_BODY), GITHUB_SIGNATURE);
    assert_eq!(webhook.verify_legacy(GITHUB_BODY, GITHUB_SIGNATURE), Ok(()));
    assert_eq!(
        verify_signature(GITHUB_SECRET, GITHUB_BODY, GITHUB_SIGNATURE),
        Ok(())
    );
}

#[test]
fn legacy_verification_accepts_uppercase_hex_and_surrounding_whitespace() {
    let upper = format!(
        "sha256={}",
        GITHUB_SIGNATURE["sha256=".len()..].to_uppercase()
    );

    assert_eq!(verify_signature(GITHUB_SECRET, GITHUB_BODY, &upper), Ok(()));
    let padded = format!("  {GITHUB_SIGNATURE}\t");
    assert_eq!(
        verify_signature(GITHUB_SECRET, GITHUB_BODY, &padded),
        Ok(())
    );
}

#[test]
fn sign_produces_the_standard_webhooks_reference_signature() {
    assert_eq!(reference().sign(SW_ID, SW_TIMESTAMP, SW_BODY), SW_SIGNATURE);
}

#[test]
fn verify_at_accepts_the_standard_webhooks_reference_signature() {
    let map = reference_headers_with_signature(SW_SIGNATURE);

    assert_eq!(verify_reference(&map), Ok(()));
}

#[test]
fn headers_carries_both_formats_and_verifies_with_both_checks() {
    let webhook = reference();
    let signed = webhook.headers(SW_ID, SW_TIMESTAMP, SW_BODY);

    assert_eq!(signed.webhook_id, SW_ID);
    assert_eq!(signed.webhook_timestamp, "1614265330");
    assert_eq!(signed.webhook_signature, SW_SIGNATURE);
    assert!(signed.foreman_signature.starts_with("sha256="));
    let names: Vec<_> = signed.iter().map(|(name, _)| name).collect();
    assert_eq!(
        names,
        [
            WEBHOOK_ID_HEADER,
            WEBHOOK_TIMESTAMP_HEADER,
            WEBHOOK_SIGNATURE_HEADER,
            FOREMAN_SIGNATURE_HEADER
        ]
    );
    let map = signed.to_header_map().unwrap();
    assert_eq!(webhook.verify_at(SW_BODY, &map, SW_TIMESTAMP), Ok(()));
    assert_eq!(
        webhook.verify_legacy(SW_BODY, &signed.foreman_signature),
        Ok(())
    );
}

#[test]
fn legacy_signatures_are_keyed_with_the_secret_as_written_even_for_whsec_secrets() {
    // The prototype's receivers compute HMAC(secret, body) with the literal string, so a
    // `whsec_` secret is not decoded for this format (it is for Standard Webhooks).
    let encoded = "whsec_SXQncyBhIFNlY3JldCB0byBFdmVyeWJvZHk=";
    let webhook = Webhook::new(encoded).unwrap();
    let signature = webhook.sign_legacy(GITHUB_BODY);
    assert_ne!(
        signature, GITHUB_SIGNATURE,
        "not keyed with the decoded bytes"
    );
    assert_eq!(verify_signature(encoded, GITHUB_BODY, &signature), Ok(()));
    let literal = Webhook::new("It's a Secret to Everybody").unwrap();
    assert_eq!(literal.sign_legacy(GITHUB_BODY), GITHUB_SIGNATURE);
}

#[test]
fn verify_uses_the_system_clock() {
    let webhook = reference();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let fresh = webhook
        .headers("msg_1", now, b"body")
        .to_header_map()
        .unwrap();
    let stale = webhook
        .headers("msg_1", SW_TIMESTAMP, b"body")
        .to_header_map()
        .unwrap();

    assert_eq!(webhook.verify(b"body", &fresh), Ok(()));
    assert_eq!(
        webhook.verify(b"body", &stale),
        Err(SignatureError::TimestampTooOld)
    );
}

// ---- secrets ----

#[test]
fn an_empty_secret_is_refused() {
    assert_eq!(Webhook::new("").unwrap_err(), SignatureError::EmptySecret);
    assert_eq!(
        Webhook::new("whsec_").unwrap_err(),
        SignatureError::EmptySecret
    );
    assert_eq!(
        verify_signature("", GITHUB_BODY, GITHUB_SIGNATURE),
        Err(SignatureError::EmptySecret)
    );
}

#[test]
fn a_whsec_secret_with_invalid_base64_is_refused() {
    assert_eq!(
        Webhook::new("whsec_not base64!").unwrap_err(),
        SignatureError::InvalidSecret
    );
    assert_eq!(
        Webhook::new("whsec_é").unwrap_err(),
        SignatureError::InvalidSecret
    );
}

#[test]
fn debug_output_does_not_contain_the_secret_or_key() {
    let webhook = Webhook::new(GITHUB_SECRET).unwrap();
    let debug = format!("{webhook:?}");

    assert!(debug.contains("[redacted]"), "{debug}");
    assert!(!debug.contains("Secret"), "{debug}");
    assert!(!debug.contains("Everybody"), "{debug}");
    assert!(!debug.contains("MfKQ9r8G"), "{:?}", reference());
    assert!(!format!("{:?}", reference()).contains("MfKQ9r8G"));
}

// ---- legacy: malformed input ----

#[test]
fn legacy_verification_reports_an_empty_header_as_missing() {
    assert_eq!(
        verify_signature(GITHUB_SECRET, GITHUB_BODY, ""),
        Err(SignatureError::MissingHeader(FOREMAN_SIGNATURE_HEADER))
    );
    assert_eq!(
        verify_signature(GITHUB_SECRET, GITHUB_BODY, "   "),
        Err(SignatureError::MissingHeader(FOREMAN_SIGNATURE_HEADER))
    );
}

#[test]
fn legacy_verification_rejects_malformed_values() {
    let malformed = [
        "sha256=",
        "sha256=zz",
        "sha256=757107ea0eb2509fc211221cce984b8a",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1700",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1z",
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé",
        "sha256=€€€€€€€€€€€€€€€€€€€€€",
        "ü",
    ];

    for value in malformed {
        assert_eq!(
            verify_signature(GITHUB_SECRET, GITHUB_BODY, value),
            Err(SignatureError::MalformedHeader(FOREMAN_SIGNATURE_HEADER)),
            "{value:?}"
        );
    }
}

#[test]
fn legacy_verification_rejects_a_very_long_value() {
    let long = format!("sha256={}", "ab".repeat(1 << 20));

    assert_eq!(
        verify_signature(GITHUB_SECRET, GITHUB_BODY, &long),
        Err(SignatureError::MalformedHeader(FOREMAN_SIGNATURE_HEADER))
    );
}

#[test]
fn legacy_verification_rejects_a_signature_for_a_different_body() {
    assert_eq!(
        verify_signature(GITHUB_SECRET, b"Hello, World?", GITHUB_SIGNATURE),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature("another secret", GITHUB_BODY, GITHUB_SIGNATURE),
        Err(SignatureError::Mismatch)
    );
}

// ---- Standard Webhooks: malformed input ----

#[test]
fn each_missing_header_is_named() {
    for absent in [
        WEBHOOK_ID_HEADER,
        WEBHOOK_TIMESTAMP_HEADER,
        WEBHOOK_SIGNATURE_HEADER,
    ] {
        let mut map = reference_headers_with_signature(SW_SIGNATURE);
        map.remove(absent);

        assert_eq!(
            verify_reference(&map),
            Err(SignatureError::MissingHeader(absent))
        );
    }
    assert_eq!(
        verify_reference(&HeaderMap::new()),
        Err(SignatureError::MissingHeader(WEBHOOK_ID_HEADER))
    );
}

#[test]
fn an_empty_message_id_is_malformed() {
    let map = headers("", &SW_TIMESTAMP.to_string(), SW_SIGNATURE);

    assert_eq!(
        verify_reference(&map),
        Err(SignatureError::MalformedHeader(WEBHOOK_ID_HEADER))
    );
}

#[test]
fn a_non_numeric_timestamp_is_malformed() {
    for timestamp in ["", "soon", "1614265330.5", "1e9", "99999999999999999999"] {
        let map = headers(SW_ID, timestamp, SW_SIGNATURE);

        assert_eq!(
            verify_reference(&map),
            Err(SignatureError::MalformedHeader(WEBHOOK_TIMESTAMP_HEADER)),
            "{timestamp:?}"
        );
    }
    let mut map = reference_headers_with_signature(SW_SIGNATURE);
    map.insert(
        WEBHOOK_TIMESTAMP_HEADER,
        HeaderValue::from_bytes("１６１４２６５３３０".as_bytes()).unwrap(),
    );
    assert_eq!(
        verify_reference(&map),
        Err(SignatureError::MalformedHeader(WEBHOOK_TIMESTAMP_HEADER))
    );
}

#[test]
fn a_timestamp_older_than_the_tolerance_is_refused() {
    refused_beyond_the_tolerance(1, i64::MAX, SignatureError::TimestampTooOld);
}

#[test]
fn a_timestamp_beyond_the_tolerance_in_the_future_is_refused() {
    refused_beyond_the_tolerance(-1, i64::MIN, SignatureError::TimestampInFuture);
}

/// Verifies the reference signature at the edge of the tolerance on one side of its
/// timestamp (`direction` 1 for later, -1 for earlier), one second past the edge and at
/// the `extreme` time: only the edge is accepted, the other two are refused with `error`.
fn refused_beyond_the_tolerance(direction: i64, extreme: i64, error: SignatureError) {
    let map = reference_headers_with_signature(SW_SIGNATURE);
    let edge = SW_TIMESTAMP + direction * DEFAULT_TOLERANCE.as_secs() as i64;

    for (now, expected) in [
        (edge, Ok(())),
        (edge + direction, Err(error.clone())),
        (extreme, Err(error.clone())),
    ] {
        assert_eq!(
            reference().verify_at(SW_BODY, &map, now),
            expected,
            "verified at {now}"
        );
    }
}

#[test]
fn with_tolerance_narrows_and_widens_the_window() {
    let map = reference_headers_with_signature(SW_SIGNATURE);
    let strict = reference().with_tolerance(Duration::from_secs(10));
    let lenient = reference().with_tolerance(Duration::MAX);

    assert_eq!(strict.tolerance(), Duration::from_secs(10));
    assert_eq!(
        strict.verify_at(SW_BODY, &map, SW_TIMESTAMP + 11),
        Err(SignatureError::TimestampTooOld)
    );
    assert_eq!(lenient.verify_at(SW_BODY, &map, i64::MAX), Ok(()));
}

#[test]
fn a_signature_header_without_a_usable_v1_signature_is_malformed() {
    let malformed = [
        "",
        "v1,",
        "v1,!!!",
        "v1,!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        "v1",
        "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "v1,AAAA",
        "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,",
    ];

    for value in malformed {
        let map = reference_headers_with_signature(value);

        assert_eq!(
            verify_reference(&map),
            Err(SignatureError::MalformedHeader(WEBHOOK_SIGNATURE_HEADER)),
            "{value:?}"
        );
    }
}

#[test]
fn several_signatures_are_accepted_when_one_is_valid() {
    let values = [
        format!("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {SW_SIGNATURE}"),
        format!("v1a,whatever v1,!!! {SW_SIGNATURE} v2,zzz"),
        format!("{SW_SIGNATURE}   v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    ];

    for value in values {
        let map = reference_headers_with_signature(&value);

        assert_eq!(verify_reference(&map), Ok(()), "{value:?}");
    }
}

#[test]
fn a_valid_signature_in_a_second_signature_header_line_is_accepted() {
    let mut map =
        reference_headers_with_signature("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    map.append(
        WEBHOOK_SIGNATURE_HEADER,
        HeaderValue::from_static(SW_SIGNATURE),
    );

    assert_eq!(verify_reference(&map), Ok(()));
}

#[test]
fn several_signatures_none_valid_is_a_mismatch() {
    let map = reference_headers_with_signature(
        "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA= v1a,x",
    );

    assert_eq!(verify_reference(&map), Err(SignatureError::Mismatch));
}

#[test]
fn a_signature_for_a_different_body_id_or_timestamp_is_a_mismatch() {
    let webhook = reference();
    let map = reference_headers_with_signature(SW_SIGNATURE);
    assert_eq!(
        webhook.verify_at(br#"{"test": 2432232315}"#, &map, SW_TIMESTAMP),
        Err(SignatureError::Mismatch)
    );

    let other_id = headers("msg_other", &SW_TIMESTAMP.to_string(), SW_SIGNATURE);
    assert_eq!(verify_reference(&other_id), Err(SignatureError::Mismatch));

    let other_time = headers(SW_ID, &(SW_TIMESTAMP + 1).to_string(), SW_SIGNATURE);
    assert_eq!(verify_reference(&other_time), Err(SignatureError::Mismatch));

    let other_key = Webhook::new("whsec_AAAAAAAAAAAAAAAAAAAAAA==").unwrap();
    assert_eq!(
        other_key.verify_at(SW_BODY, &map, SW_TIMESTAMP),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn multi_byte_utf8_header_values_are_refused_without_panicking() {
    let utf8 = HeaderValue::from_bytes("v1,ééééééééééééééééééééééé€€€".as_bytes()).unwrap();
    let mut map = reference_headers_with_signature(SW_SIGNATURE);
    map.insert(WEBHOOK_SIGNATURE_HEADER, utf8.clone());
    assert_eq!(
        verify_reference(&map),
        Err(SignatureError::MalformedHeader(WEBHOOK_SIGNATURE_HEADER))
    );

    // A non-ASCII id is signed as raw bytes, so it cannot match a signature made for another id.
    let mut map = reference_headers_with_signature(SW_SIGNATURE);
    map.insert(WEBHOOK_ID_HEADER, utf8);
    assert_eq!(verify_reference(&map), Err(SignatureError::Mismatch));
}

#[test]
fn very_long_header_values_are_refused_without_panicking() {
    let long_signature = format!("v1,{}", "A".repeat(1 << 20));
    let map = reference_headers_with_signature(&long_signature);
    assert_eq!(
        verify_reference(&map),
        Err(SignatureError::MalformedHeader(WEBHOOK_SIGNATURE_HEADER))
    );

    let many = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= ".repeat(10_000);
    let map = reference_headers_with_signature(&many);
    assert_eq!(verify_reference(&map), Err(SignatureError::Mismatch));

    let long_timestamp = "1".repeat(1 << 16);
    let map = headers(SW_ID, &long_timestamp, SW_SIGNATURE);
    assert_eq!(
        verify_reference(&map),
        Err(SignatureError::MalformedHeader(WEBHOOK_TIMESTAMP_HEADER))
    );
}

#[test]
fn error_messages_name_the_header_at_fault() {
    assert_eq!(
        SignatureError::MissingHeader(WEBHOOK_ID_HEADER).to_string(),
        "missing header webhook-id"
    );
    assert_eq!(
        SignatureError::MalformedHeader(WEBHOOK_SIGNATURE_HEADER).to_string(),
        "malformed header webhook-signature"
    );
}

// ---- properties ----

fn arbitrary_header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        any::<String>(),
        "(v1a?,[A-Za-z0-9+/=!]{0,50} ?){0,4}",
        "-?[0-9]{0,20}",
    ]
    .prop_filter_map("not a valid header value", |text| {
        HeaderValue::from_bytes(text.as_bytes()).ok()
    })
}

proptest! {
    #[test]
    fn verify_at_never_panics_on_arbitrary_headers(
        id in proptest::option::of(arbitrary_header_value()),
        timestamp in proptest::option::of(arbitrary_header_value()),
        signature in proptest::option::of(arbitrary_header_value()),
        body in proptest::collection::vec(any::<u8>(), 0..256),
        now in any::<i64>(),
    ) {
        let mut map = HeaderMap::new();
        for (name, value) in [
            (WEBHOOK_ID_HEADER, id),
            (WEBHOOK_TIMESTAMP_HEADER, timestamp),
            (WEBHOOK_SIGNATURE_HEADER, signature),
        ] {
            if let Some(value) = value {
                map.insert(name, value);
            }
        }

        let result = reference().verify_at(&body, &map, now);

        prop_assert!(result.is_err());
    }

    #[test]
    fn verify_legacy_never_panics_on_arbitrary_values(
        value in prop_oneof![any::<String>(), "sha256=[0-9a-fA-Fé]{0,70}"],
        body in proptest::collection::vec(any::<u8>(), 0..256),
        secret in "\\PC{1,40}",
    ) {
        prop_assert!(Webhook::new(GITHUB_SECRET).unwrap().verify_legacy(&body, &value).is_err());
        // An arbitrary secret may be refused (a bad whsec_), but never by panicking.
        let _ = verify_signature(&secret, &body, &value);
    }

    #[test]
    fn signing_then_verifying_round_trips(
        secret in "\\PC{1,40}",
        id in "[!-~]{1,64}",
        timestamp in any::<i64>(),
        body in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        prop_assume!(!secret.starts_with("whsec_"));
        let webhook = Webhook::new(&secret).unwrap();
        let signed = webhook.headers(&id, timestamp, &body);
        let map = signed.to_header_map().unwrap();

        prop_assert_eq!(webhook.verify_at(&body, &map, timestamp), Ok(()));
        prop_assert_eq!(webhook.verify_legacy(&body, &signed.foreman_signature), Ok(()));
        let mut tampered = body.clone();
        tampered.push(0);
        prop_assert_eq!(webhook.verify_at(&tampered, &map, timestamp), Err(SignatureError::Mismatch));
        prop_assert_eq!(
            webhook.verify_legacy(&tampered, &signed.foreman_signature),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn whsec_keys_round_trip(
        key in proptest::collection::vec(any::<u8>(), 1..64),
        id in "[!-~]{1,64}",
        timestamp in any::<i64>(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        use base64::Engine as _;
        let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(&key));
        let webhook = Webhook::new(&secret).unwrap();
        let map = webhook.headers(&id, timestamp, &body).to_header_map().unwrap();

        prop_assert_eq!(webhook.verify_at(&body, &map, timestamp), Ok(()));
    }
}
