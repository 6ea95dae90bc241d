//! Arbitrary JSON never panics the wire types, and what parses re-serialises stably.

use foreman_types::{
    ChatChunk, ChatRequest, EmbedRequest, EmbeddingsRequest, GenerateChunk, GenerateRequest, Job,
    PsResponse, ShowRequest, SubmitRequest, TagsResponse, WebhookEvent,
};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        // Strings the wire types look for, to reach deeper than random text does.
        prop::sample::select(vec![
            "llama3.2",
            "user",
            "assistant",
            "system",
            "tool",
            "queued",
            "done",
            "failed",
            "chat",
            "generate",
            "base64",
            "utf8",
            "2024-01-01T00:00:00Z",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ]
}

/// Field names the wire types use, plus a few they do not.
const KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "images",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "stream",
    "options",
    "format",
    "tools",
    "think",
    "keep_alive",
    "prompt",
    "system",
    "template",
    "raw",
    "suffix",
    "context",
    "input",
    "truncate",
    "dimensions",
    "state_webhook_url",
    "priority",
    "id",
    "state",
    "attempts",
    "created_at",
    "updated_at",
    "error",
    "result",
    "artifacts",
    "webhook_attempts",
    "job_id",
    "type",
    "timestamp",
    "done",
    "done_reason",
    "message",
    "response",
    "thinking",
    "models",
    "size",
    "digest",
    "details",
    "expires_at",
    "size_vram",
    "modified_at",
    "data",
    "url",
    "content_type",
    "encoding",
    "webhook_id",
    "attempt",
    "status",
    "latency_ms",
    "at",
    "x-unknown",
    "",
];

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// Parses `value` as `T`; when it parses, serialising and parsing again is a fixed point.
fn round_trips<T: DeserializeOwned + Serialize>(value: &Value) -> Result<(), TestCaseError> {
    if let Ok(parsed) = serde_json::from_value::<T>(value.clone()) {
        let once = serde_json::to_value(&parsed).expect("a parsed value serialises");
        let again: T = serde_json::from_value(once.clone())
            .map_err(|e| TestCaseError::fail(format!("re-parse of {once} failed: {e}")))?;
        let twice = serde_json::to_value(&again).expect("serialises");
        prop_assert_eq!(once, twice);
    }
    Ok(())
}

fn all_types(value: &Value) -> Result<(), TestCaseError> {
    round_trips::<ChatRequest>(value)?;
    round_trips::<GenerateRequest>(value)?;
    round_trips::<SubmitRequest>(value)?;
    round_trips::<EmbedRequest>(value)?;
    round_trips::<EmbeddingsRequest>(value)?;
    round_trips::<ShowRequest>(value)?;
    round_trips::<ChatChunk>(value)?;
    round_trips::<GenerateChunk>(value)?;
    round_trips::<Job>(value)?;
    round_trips::<WebhookEvent>(value)?;
    round_trips::<TagsResponse>(value)?;
    round_trips::<PsResponse>(value)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics_and_parsed_values_round_trip(value in json_value()) {
        all_types(&value)?;
    }

    #[test]
    fn requests_with_a_model_and_arbitrary_fields_round_trip(
        fields in prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..8),
    ) {
        let mut object = Map::new();
        object.insert("model".into(), json!("llama3.2"));
        object.insert("messages".into(), json!([{"role": "user", "content": "hi"}]));
        for (key, value) in fields {
            object.insert(key.to_owned(), value);
        }
        all_types(&Value::Object(object))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parsers(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<ChatRequest>(&bytes);
        let _ = serde_json::from_slice::<GenerateRequest>(&bytes);
        let _ = serde_json::from_slice::<SubmitRequest>(&bytes);
        let _ = serde_json::from_slice::<EmbedRequest>(&bytes);
        let _ = serde_json::from_slice::<WebhookEvent>(&bytes);
        let _ = serde_json::from_slice::<Job>(&bytes);
    }
}
