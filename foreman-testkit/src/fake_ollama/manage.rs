//! The fake's model management, as Ollama's `server/routes.go` answers it:
//! `POST /api/pull`, `/api/push`, `/api/create`, `/api/copy`, `DELETE /api/delete`,
//! `HEAD|POST /api/blobs/{digest}` and `GET /api/status`.
//!
//! Pull, push and create stream NDJSON progress unless `stream: false` (then the last
//! line alone): per layer, `pulling <12 hex>` lines with `digest`, `total` and a growing
//! `completed`, ending `{"status":"success"}`. A failure after the stream started is an
//! `{"error": ...}` line with status 200, as Ollama writes it. Pulled and created models
//! appear after the pull delay (none by default); copy and delete change the model list
//! at once.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use wiremock::http::Method;
use wiremock::{Request, ResponseTemplate};

use super::models::{canonical, Model};
use super::respond::{body_object, error, model_request, BadRequest};
use super::state::State;

/// What a pull of a name the registry lacks answers, as Ollama does.
const NOT_IN_REGISTRY: &str = "pull model manifest: file does not exist";

/// Answers a model management request; `None` when the route is not one of these.
pub(crate) fn respond(state: &mut State, request: &Request) -> Option<ResponseTemplate> {
    let path = request.url.path();
    let method = &request.method;
    let answer = match path {
        "/api/pull" if method == Method::POST => pull(state, request),
        "/api/push" if method == Method::POST => push(state, request),
        "/api/create" if method == Method::POST => create(state, request),
        "/api/copy" if method == Method::POST => copy(state, request),
        "/api/delete" if method == Method::DELETE => delete(state, request),
        "/api/status" if method == Method::GET => ResponseTemplate::new(200)
            .set_body_json(json!({ "cloud": { "disabled": false, "source": "none" } })),
        _ if path.starts_with("/api/blobs/") && method == Method::HEAD => {
            let digest = &path["/api/blobs/".len()..];
            let status = if state.blobs.contains(digest) {
                200
            } else {
                404
            };
            ResponseTemplate::new(status)
        }
        _ if path.starts_with("/api/blobs/") && method == Method::POST => {
            upload_blob(state, &path["/api/blobs/".len()..], &request.body)
        }
        _ => return None,
    };
    Some(answer)
}

/// Whether progress streams: Ollama streams unless `stream` is `false`.
fn streams(body: &Map<String, Value>) -> bool {
    body.get("stream").and_then(Value::as_bool).unwrap_or(true)
}

/// The progress lines as Ollama answers them: NDJSON, or with `stream: false` the last
/// line alone (a failure then is a 500 with the error).
fn progress(
    body: &Map<String, Value>,
    lines: Vec<Value>,
    delay: std::time::Duration,
) -> ResponseTemplate {
    if !streams(body) {
        let last = lines.last().cloned().unwrap_or_else(|| json!({}));
        let status = if last.get("error").is_some() {
            500
        } else {
            200
        };
        return ResponseTemplate::new(status)
            .set_body_json(last)
            .set_delay(delay);
    }
    let mut text = String::new();
    for line in lines {
        text.push_str(&line.to_string());
        text.push('\n');
    }
    ResponseTemplate::new(200)
        .set_body_raw(text, "application/x-ndjson")
        .set_delay(delay)
}

/// `{"status": ...}` lines for each layer: announced, half done, done.
fn layer_lines(verb: &str, model: &Model) -> Vec<Value> {
    let mut lines = Vec::new();
    for (digest, total) in model.layers() {
        let status = format!("{verb} {}", &digest[7..19]);
        lines.push(json!({ "status": status, "digest": digest, "total": total }));
        for completed in [total / 2, total] {
            lines.push(json!({
                "status": status, "digest": digest, "total": total, "completed": completed,
            }));
        }
    }
    lines
}

fn pull(state: &mut State, request: &Request) -> ResponseTemplate {
    let (body, name) = match model_request(request) {
        Ok(parsed) => parsed,
        Err(bad) => return bad.answer(),
    };
    let mut lines = vec![json!({ "status": "pulling manifest" })];
    if state.unpullable.contains(&canonical(&name)) {
        lines.push(json!({ "error": NOT_IN_REGISTRY }));
        return progress(&body, lines, state.pull_delay);
    }
    let model = state
        .find(&name)
        .cloned()
        .unwrap_or_else(|| Model::new(&name));
    lines.extend(layer_lines("pulling", &model));
    lines.push(json!({ "status": "verifying sha256 digest" }));
    lines.push(json!({ "status": "writing manifest" }));
    lines.push(json!({ "status": "success" }));
    state.install_later(model);
    progress(&body, lines, state.pull_delay)
}

fn push(state: &mut State, request: &Request) -> ResponseTemplate {
    let (body, name) = match model_request(request) {
        Ok(parsed) => parsed,
        Err(bad) => return bad.answer(),
    };
    let Some(model) = state.find(&name).cloned() else {
        return error(500, &format!("model \"{name}\" not found"));
    };
    let mut lines = vec![json!({ "status": "retrieving manifest" })];
    lines.extend(layer_lines("pushing", &model));
    lines.push(json!({ "status": "pushing manifest" }));
    lines.push(json!({ "status": "success" }));
    progress(&body, lines, state.pull_delay)
}

fn create(state: &mut State, request: &Request) -> ResponseTemplate {
    let (body, name) = match model_request(request) {
        Ok(parsed) => parsed,
        Err(bad) => return bad.answer(),
    };
    let mut lines = Vec::new();
    let model = match (body.get("from").and_then(Value::as_str), body.get("files")) {
        (Some(from), _) => {
            let Some(base) = state.find(from).cloned() else {
                return error(500, NOT_IN_REGISTRY);
            };
            for (digest, _) in base.layers() {
                lines.push(json!({ "status": format!("using existing layer {digest}") }));
            }
            base.renamed(&name)
        }
        (None, Some(Value::Object(files))) if !files.is_empty() => {
            lines.push(json!({ "status": "parsing GGUF" }));
            for digest in files.values() {
                let digest = digest.as_str().unwrap_or_default();
                if !state.blobs.contains(digest) {
                    return error(400, &format!("blob \"{digest}\" not found"));
                }
                lines.push(json!({ "status": format!("using existing layer {digest}") }));
            }
            Model::new(&name)
        }
        _ => return error(400, "neither 'from' or 'files' was specified"),
    };
    lines.push(json!({ "status": "writing manifest" }));
    lines.push(json!({ "status": "success" }));
    state.install_later(model);
    progress(&body, lines, state.pull_delay)
}

fn copy(state: &mut State, request: &Request) -> ResponseTemplate {
    let body = match body_object(request) {
        Ok(body) => body,
        Err(bad) => return bad.answer(),
    };
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default();
    let (source, destination) = (text("source"), text("destination"));
    if destination.is_empty() {
        return BadRequest("destination \"\" is invalid").answer();
    }
    let Some(model) = state.find(source).cloned() else {
        return error(404, &format!("model \"{source}\" not found"));
    };
    state.models.retain(|m| m.name != canonical(destination));
    state.models.push(model.renamed(destination));
    ResponseTemplate::new(200)
}

fn delete(state: &mut State, request: &Request) -> ResponseTemplate {
    let (_, name) = match model_request(request) {
        Ok(parsed) => parsed,
        Err(bad) => return bad.answer(),
    };
    let name = canonical(&name);
    if state.find(&name).is_none() {
        return error(404, &format!("model '{name}' not found"));
    }
    state.models.retain(|m| m.name != name);
    if state.resident.as_deref() == Some(name.as_str()) {
        state.resident = None;
    }
    ResponseTemplate::new(200)
}

/// `POST /api/blobs/{digest}`: 201 when the body hashes to the digest, 200 when the blob
/// is already there, 400 otherwise.
fn upload_blob(state: &mut State, digest: &str, body: &[u8]) -> ResponseTemplate {
    if state.blobs.contains(digest) {
        return ResponseTemplate::new(200);
    }
    let actual = format!("sha256:{}", hex::encode(Sha256::digest(body)));
    if actual != digest {
        return error(
            400,
            &format!("digest mismatch, expected \"{digest}\", got \"{actual}\""),
        );
    }
    state.blobs.insert(actual);
    ResponseTemplate::new(201)
}
