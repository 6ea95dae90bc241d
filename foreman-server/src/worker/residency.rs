//! What a job does to the target's memory beyond running: Ollama unloads a model after a
//! request whose `keep_alive` is zero (what `ollama stop` and Open WebUI's "unload" send,
//! with no prompt), so foreman's idea of the resident model must follow at once rather
//! than at the next poll, or drain by model would keep favouring a model that is gone.

use foreman_types::JobKind;
use serde_json::Value;

/// Whether the job's request unloads its model once answered.
pub(super) fn unloads(kind: JobKind, payload: &[u8]) -> bool {
    if !matches!(kind, JobKind::Chat | JobKind::Generate) {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct KeepAlive {
        keep_alive: Option<Value>,
    }
    match serde_json::from_slice::<KeepAlive>(payload) {
        Ok(KeepAlive {
            keep_alive: Some(value),
        }) => is_zero(&value),
        _ => false,
    }
}

/// Ollama's reading of `keep_alive` (`api.Duration`): a number is whole seconds (so 0.5
/// is zero; a negative one means forever), a string is a Go duration (`"0"`, `"0s"`,
/// `"0m"`).
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_f64().is_some_and(|secs| (0.0..1.0).contains(&secs)),
        Value::String(s) => zero_duration(s.trim()),
        _ => false,
    }
}

/// Whether a Go duration string is zero: a number that is zero, then a unit or (for `0`
/// alone) none.
fn zero_duration(text: &str) -> bool {
    let text = text.strip_prefix(['+', '-']).unwrap_or(text);
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let zero = number.parse::<f64>().is_ok_and(|n| n == 0.0);
    zero && matches!(unit, "" | "ns" | "us" | "µs" | "ms" | "s" | "m" | "h")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_zero_in_any_spelling_unloads() {
        for body in [
            r#"{"model":"m","keep_alive":0}"#,
            r#"{"model":"m","keep_alive":0.5}"#,
            r#"{"model":"m","keep_alive":"0"}"#,
            r#"{"model":"m","keep_alive":"0s"}"#,
            r#"{"model":"m","keep_alive":"0m","prompt":"bye"}"#,
        ] {
            assert!(unloads(JobKind::Generate, body.as_bytes()), "{body}");
            assert!(unloads(JobKind::Chat, body.as_bytes()), "{body}");
        }
    }

    #[test]
    fn other_keep_alives_and_other_kinds_do_not() {
        for body in [
            r#"{"model":"m"}"#,
            r#"{"model":"m","keep_alive":-1}"#,
            r#"{"model":"m","keep_alive":"5m"}"#,
            r#"{"model":"m","keep_alive":300}"#,
            r#"{"model":"m","keep_alive":"0x"}"#,
            r#"{"model":"m","keep_alive":null}"#,
            "not json",
        ] {
            assert!(!unloads(JobKind::Generate, body.as_bytes()), "{body}");
        }
        let zero = br#"{"model":"m","keep_alive":0}"#;
        assert!(!unloads(JobKind::OpenAiChat, zero));
    }
}
