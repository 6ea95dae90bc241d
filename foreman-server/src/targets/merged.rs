//! The union views over every target: `/api/tags` (each installed model once) and
//! `/api/ps` (each loaded model once, with the targets that hold it in `target` and
//! `targets`, fields Ollama clients ignore).
//!
//! Both are built from the answers each target last gave, kept as JSON: every field a
//! target sends reaches the caller, so with one target `/api/tags` is its answer as is.

use serde_json::{Map, Value};

use super::Pool;

/// The union of the targets' `/api/tags`, in target order; `None` until one answered.
pub(crate) fn tags(pool: &Pool) -> Option<Value> {
    let answers: Vec<(String, Value)> = pool
        .all()
        .iter()
        .filter_map(|t| Some((t.name.clone(), t.inventory.tags()?)))
        .collect();
    union(answers, false)
}

/// The union of the targets' `/api/ps` (as cached, or as given), each entry with the
/// target that holds it; `None` until one answered.
pub(crate) fn ps(answers: Vec<(String, Value)>) -> Option<Value> {
    union(answers, true)
}

/// The first answer with its `models` replaced by every answer's models, each name once.
/// With `tag`, each model says which targets hold it: `target` (the first) and `targets`.
fn union(answers: Vec<(String, Value)>, tag: bool) -> Option<Value> {
    let mut answers = answers.into_iter();
    let (first_target, first) = answers.next()?;
    let mut merged: Map<String, Value> = match first {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let mut models: Vec<Value> = Vec::new();
    let mut add = |target: &str, answer: Option<&Value>| {
        let entries = answer
            .and_then(|a| a.get("models"))
            .and_then(Value::as_array);
        for entry in entries.into_iter().flatten() {
            let name = model_name(entry);
            let existing = models
                .iter_mut()
                .find(|m| name.is_some() && model_name(m) == name);
            match existing {
                Some(existing) if tag => {
                    if let Some(Value::Array(targets)) = existing.get_mut("targets") {
                        targets.push(Value::String(target.to_owned()));
                    }
                }
                Some(_) => {}
                None => {
                    let mut entry = entry.clone();
                    if let (true, Value::Object(fields)) = (tag, &mut entry) {
                        fields.insert("target".into(), Value::String(target.to_owned()));
                        fields.insert(
                            "targets".into(),
                            Value::Array(vec![Value::String(target.to_owned())]),
                        );
                    }
                    models.push(entry);
                }
            }
        }
    };
    add(&first_target, Some(&Value::Object(merged.clone())));
    for (target, answer) in answers {
        add(&target, Some(&answer));
    }
    merged.insert("models".into(), Value::Array(models));
    Some(Value::Object(merged))
}

/// An entry's `name` (or, from older hosts, `model`).
fn model_name(entry: &Value) -> Option<&str> {
    entry
        .get("name")
        .or_else(|| entry.get("model"))
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_model_is_listed_once_in_target_order() {
        let merged = union(
            vec![
                (
                    "a".into(),
                    json!({"models": [{"name": "x:latest", "size": 1}]}),
                ),
                (
                    "b".into(),
                    json!({"models": [{"name": "y:latest"}, {"name": "x:latest", "size": 2}]}),
                ),
            ],
            false,
        )
        .unwrap();
        assert_eq!(
            merged,
            json!({"models": [{"name": "x:latest", "size": 1}, {"name": "y:latest"}]})
        );
    }

    #[test]
    fn loaded_models_say_which_targets_hold_them() {
        let merged = ps(vec![
            ("a".into(), json!({"models": [{"name": "x:latest"}]})),
            (
                "b".into(),
                json!({"models": [{"name": "x:latest"}, {"name": "y:7b"}]}),
            ),
        ])
        .unwrap();
        assert_eq!(
            merged["models"],
            json!([
                {"name": "x:latest", "target": "a", "targets": ["a", "b"]},
                {"name": "y:7b", "target": "b", "targets": ["b"]},
            ])
        );
    }

    #[test]
    fn one_answer_passes_through_with_its_other_fields() {
        let answer = json!({"models": [{"name": "x:latest", "new": true}], "extra": 1});
        assert_eq!(
            union(vec![("a".into(), answer.clone())], false),
            Some(answer)
        );
        assert_eq!(union(Vec::new(), false), None);
    }
}
