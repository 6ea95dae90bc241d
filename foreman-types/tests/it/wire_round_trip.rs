//! Ollama's documented payloads survive a parse and re-serialise unchanged.

use foreman_types::ollama::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use serde_json::Value;

/// Parses `value` as `T`, serialises it again and checks that nothing changed.
fn assert_round_trip<T: DeserializeOwned + Serialize>(value: Value) -> T {
    let parsed: T = serde_json::from_value(value.clone()).expect("parses");
    let again = serde_json::to_value(&parsed).expect("serialises");
    assert_eq!(again, value, "a parse and re-serialise changed the payload");
    parsed
}

#[test]
fn chat_request_from_ollama_docs_round_trips_with_unmodelled_fields() {
    let request: ChatRequest = assert_round_trip(json!({
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "what is in this image?", "images": ["iVBORw0KGgo="]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}, "index": 0}}
            ]},
            {"role": "tool", "content": "11 degrees", "tool_name": "get_weather"}
        ],
        "stream": false,
        "format": {"type": "object", "properties": {"age": {"type": "integer"}}},
        "options": {"temperature": 0, "seed": 42, "num_ctx": 8192},
        "keep_alive": "10m",
        "think": "high",
        "tools": [{"type": "function", "function": {"name": "get_weather"}}],
        "some_future_field": {"nested": [1, 2, 3]}
    }));
    assert_eq!(request.model, "llama3.2");
    assert!(!request.is_streaming());
    assert_eq!(request.messages[3].extra["tool_name"], "get_weather");
    assert_eq!(
        request.messages[2].tool_calls.as_ref().unwrap()[0]
            .function
            .name,
        "get_weather"
    );
    assert!(request.extra.contains_key("some_future_field"));
}

#[test]
fn chat_request_streams_when_stream_is_absent() {
    let request: ChatRequest =
        serde_json::from_value(json!({"model": "m", "messages": []})).unwrap();
    assert!(request.is_streaming());
}

#[test]
fn streamed_chat_chunks_and_the_final_chunk_round_trip() {
    let chunk: ChatChunk = assert_round_trip(json!({
        "model": "llama3.2",
        "created_at": "2023-08-04T08:52:19.385406455-07:00",
        "message": {"role": "assistant", "content": "The", "thinking": "hmm"},
        "done": false
    }));
    assert_eq!(chunk.message.thinking.as_deref(), Some("hmm"));
    let last: ChatChunk = assert_round_trip(json!({
        "model": "llama3.2",
        "created_at": "2023-08-04T19:22:45.499127Z",
        "message": {"role": "assistant", "content": ""},
        "done": true,
        "done_reason": "stop",
        "total_duration": 4883583458u64,
        "load_duration": 1334875,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 342546000,
        "eval_count": 282,
        "eval_duration": 4535599000u64
    }));
    assert!(last.done);
    assert_eq!(last.metrics.eval_count, Some(282));
    assert_eq!(last.done_reason.as_deref(), Some("stop"));
}

#[test]
fn generate_request_and_chunks_round_trip() {
    let request: GenerateRequest = assert_round_trip(json!({
        "model": "codellama:code",
        "prompt": "def compute_gcd(a, b):",
        "suffix": "    return result",
        "options": {"temperature": 0},
        "stream": false,
        "raw": true,
        "context": [1, 2, 3],
        "template": "{{ .Prompt }}"
    }));
    assert_eq!(request.extra["raw"], true);
    let chunk: GenerateChunk = assert_round_trip(json!({
        "model": "llama3.2",
        "created_at": "2023-08-04T19:22:45.499127Z",
        "response": "",
        "done": true,
        "done_reason": "stop",
        "context": [1, 2, 3],
        "total_duration": 10706818083u64,
        "load_duration": 6338219291u64,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 130079000,
        "eval_count": 259,
        "eval_duration": 4232710000u64
    }));
    assert_eq!(chunk.extra["context"], json!([1, 2, 3]));
}

#[test]
fn embed_input_is_a_string_or_a_list() {
    let one: EmbedRequest = assert_round_trip(json!({
        "model": "all-minilm", "input": "Why is the sky blue?", "truncate": false
    }));
    assert_eq!(one.input, EmbedInput::One("Why is the sky blue?".into()));
    let many: EmbedRequest = assert_round_trip(json!({
        "model": "all-minilm", "input": ["a", "b"], "dimensions": 2
    }));
    assert_eq!(many.input, EmbedInput::Many(vec!["a".into(), "b".into()]));
    let response: EmbedResponse = assert_round_trip(json!({
        "model": "all-minilm",
        "embeddings": [[0.5, -0.25], [0.125, 1.0]],
        "total_duration": 14143917,
        "load_duration": 1019500,
        "prompt_eval_count": 8
    }));
    assert_eq!(response.embeddings.len(), 2);
}

#[test]
fn legacy_embeddings_round_trip() {
    let request: EmbeddingsRequest = assert_round_trip(json!({
        "model": "all-minilm", "prompt": "Here is an article", "options": {"seed": 1}
    }));
    assert_eq!(request.prompt, "Here is an article");
    let response: EmbeddingsResponse = assert_round_trip(json!({"embedding": [0.5, 0.25, -1.0]}));
    assert_eq!(response.embedding, vec![0.5, 0.25, -1.0]);
}

#[test]
fn tags_ps_show_and_version_round_trip() {
    let details = json!({
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M"
    });
    let tags: TagsResponse = assert_round_trip(json!({"models": [{
        "name": "llama3.2:latest",
        "model": "llama3.2:latest",
        "modified_at": "2025-05-04T17:37:44.706015396-07:00",
        "size": 2019393189u64,
        "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
        "details": details
    }]}));
    assert_eq!(tags.models[0].name, "llama3.2:latest");
    let ps: PsResponse = assert_round_trip(json!({"models": [{
        "name": "llama3.2:latest",
        "model": "llama3.2:latest",
        "size": 5137025024u64,
        "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
        "details": details,
        "expires_at": "2025-05-04T18:00:00.000000000-07:00",
        "size_vram": 5137025024u64,
        "context_length": 4096
    }]}));
    assert_eq!(ps.models[0].extra["context_length"], 4096);
    let show: ShowResponse = assert_round_trip(json!({
        "modelfile": "FROM llama3.2",
        "parameters": "num_keep 24",
        "template": "{{ .Prompt }}",
        "details": details,
        "model_info": {"general.architecture": "llama"},
        "capabilities": ["completion", "tools"],
        "modified_at": "2025-05-04T17:37:44.706015396-07:00"
    }));
    assert_eq!(show.capabilities.unwrap(), vec!["completion", "tools"]);
    let version: VersionResponse = assert_round_trip(json!({"version": "0.12.6"}));
    assert_eq!(version.version, "0.12.6");
}

#[test]
fn error_body_has_ollamas_shape() {
    let body: ErrorBody =
        assert_round_trip(json!({"error": "model \"x\" not found, try pulling it first"}));
    assert!(body.error.contains("not found"));
}

#[test]
fn error_messages_are_read_from_every_shape_an_error_comes_in() {
    let message = |body: &str| ErrorBody::message_in(body.as_bytes());
    assert_eq!(
        message(r#"{"error":"out of memory"}"#).as_deref(),
        Some("out of memory")
    );
    assert_eq!(
        message(r#"{"error":{"message":"bad","type":"api_error","code":null}}"#).as_deref(),
        Some("bad")
    );
    assert_eq!(
        message(r#"{"error":{"code":7}}"#).as_deref(),
        Some(r#"{"code":7}"#)
    );
    assert_eq!(message(r#"{"error":42}"#).as_deref(), Some("42"));
    assert_eq!(message(r#"{"error":null,"done":true}"#), None);
    assert_eq!(message(r#"{"message":{"content":"error"}}"#), None);
    assert_eq!(message("[1]"), None);
    assert_eq!(message("not json"), None);
}

#[test]
fn model_key_adds_latest_only_when_there_is_no_tag() {
    assert_eq!(model_key("llama3.2"), "llama3.2:latest");
    assert_eq!(model_key("llama3.2:latest"), "llama3.2:latest");
    assert_eq!(model_key("hf.co/org/model:Q4"), "hf.co/org/model:Q4");
    assert_eq!(
        model_key("localhost:5000/org/model"),
        "localhost:5000/org/model:latest"
    );
}

#[test]
fn model_management_requests_from_ollama_docs_round_trip() {
    let pull: PullRequest = assert_round_trip(json!({
        "model": "llama3.2", "insecure": false, "stream": false,
        // What Ollama's Go client also sends: deprecated, kept, not interpreted.
        "name": "", "username": "", "password": ""
    }));
    assert_eq!(pull.model, "llama3.2");
    assert_eq!(pull.extra["username"], "");
    let push: PushRequest = assert_round_trip(json!({"model": "me/mine:latest"}));
    assert_eq!(push.model, "me/mine:latest");
    let create: CreateRequest = assert_round_trip(json!({
        "model": "mario",
        "from": "llama3.2",
        "system": "You are Mario from Super Mario Bros.",
        "files": {"model.gguf": "sha256:432f310a77f4650a88d0fd59ecdd7cebed8d684bafea53cbff0473542964f0c3"},
        "parameters": {"num_ctx": 4096, "stop": ["<|eot_id|>"]},
        "license": ["MIT"],
        "messages": [{"role": "user", "content": "hi"}]
    }));
    assert_eq!(create.from.as_deref(), Some("llama3.2"));
    assert!(create.extra.contains_key("messages"));
    let copy: CopyRequest =
        assert_round_trip(json!({"source": "llama3.2", "destination": "llama3-backup"}));
    assert_eq!(copy.destination, "llama3-backup");
    let delete: DeleteRequest = assert_round_trip(json!({"model": "llama3:13b"}));
    assert_eq!(delete.model, "llama3:13b");
}

#[test]
fn progress_lines_round_trip_and_the_last_one_says_success() {
    let layer: ProgressResponse = assert_round_trip(json!({
        "status": "pulling dde5aa3fc5ff",
        "digest": "sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff",
        "total": 2019377376u64,
        "completed": 241970u64
    }));
    assert_eq!(layer.completed, Some(241_970));
    assert!(!layer.is_success());
    let done: ProgressResponse = assert_round_trip(json!({"status": "success"}));
    assert!(done.is_success());
    assert_eq!(done.digest, None);
    let built = serde_json::to_value(ProgressResponse::new("writing manifest")).unwrap();
    assert_eq!(built, json!({"status": "writing manifest"}));
}
