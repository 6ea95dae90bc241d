//! `GET /v1/models` and `GET /v1/models/{id}`: every target's models (each once) from the
//! pollers' caches, described as Ollama's OpenAI-compatible routes describe them.

use axum::extract::{Path, State};
use axum::Json;
use chrono::DateTime;
use foreman_types::{model_key, model_owner};
use serde_json::{json, Value};

use super::error::OpenAiError;
use crate::error::AppError;
use crate::state::App;
use crate::targets::merged;

/// `GET /v1/models`.
pub(super) async fn list(State(app): State<App>) -> Result<Json<Value>, OpenAiError> {
    let tags = tags(&app).await?;
    let data: Vec<Value> = names(&tags)
        .map(|(name, entry)| model(name, entry))
        .collect();
    Ok(Json(json!({ "object": "list", "data": data })))
}

/// `GET /v1/models/{id}`; the id may hold `/` and `:` (`hf.co/org/model:Q4_K_M`). A name
/// without a tag finds its `:latest`, as everywhere in Ollama.
pub(super) async fn retrieve(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpenAiError> {
    let tags = tags(&app).await?;
    let key = model_key(&id);
    let found = names(&tags)
        .find(|(name, _)| *name == id)
        .or_else(|| names(&tags).find(|(name, _)| model_key(name) == key));
    match found {
        Some((name, entry)) => Ok(Json(model(name, entry))),
        None => Err(AppError::ModelNotFound(id).into()),
    }
}

/// The union of the targets' cached `/api/tags`; before the first successful poll, one
/// poll of every target now.
async fn tags(app: &App) -> Result<Value, AppError> {
    if let Some(tags) = merged::tags(&app.targets) {
        return Ok(tags);
    }
    app.targets.refresh_all().await;
    merged::tags(&app.targets).ok_or_else(|| {
        AppError::BadGateway("no target has answered yet, so the models are unknown".into())
    })
}

/// Each model's name with its `/api/tags` entry.
fn names(tags: &Value) -> impl Iterator<Item = (&str, &Value)> {
    tags.get("models")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let name = entry
                .get("name")
                .or_else(|| entry.get("model"))
                .and_then(Value::as_str)?;
            Some((name, entry))
        })
}

/// One model object: `created` from `modified_at` (Unix seconds), `owned_by` the name's
/// namespace, as Ollama reports them.
fn model(name: &str, entry: &Value) -> Value {
    let created = entry
        .get("modified_at")
        .and_then(Value::as_str)
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map_or(0, |at| at.timestamp());
    json!({ "id": name, "object": "model", "created": created, "owned_by": model_owner(name) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_is_unix_seconds_of_modified_at() {
        let entry =
            json!({"name": "m:latest", "modified_at": "2024-05-20T11:51:29.412467196-07:00"});
        let object = model("m:latest", &entry);
        assert_eq!(object["created"], 1_716_231_089);
        assert_eq!(object["object"], "model");
        assert_eq!(object["owned_by"], "library");
    }
}
