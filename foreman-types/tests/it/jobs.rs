//! Job ids, states and their transitions, and the jobs API bodies.

use chrono::Utc;
use foreman_types::jobs::*;
use serde_json::json;

#[test]
fn terminal_states_absorb_every_transition() {
    for from in JobState::ALL.into_iter().filter(|s| s.is_terminal()) {
        for to in JobState::ALL {
            assert!(!from.can_become(to), "{from} must not become {to}");
        }
    }
}

#[test]
fn job_kinds_round_trip_through_their_names() {
    let kinds = [
        JobKind::Chat,
        JobKind::Generate,
        JobKind::OpenAiChat,
        JobKind::OpenAiCompletion,
        JobKind::OpenAiResponses,
        JobKind::AnthropicMessages,
    ];
    for kind in kinds {
        assert_eq!(kind.as_str().parse::<JobKind>(), Ok(kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
    }
    assert_eq!(JobKind::OpenAiChat.path(), "/v1/chat/completions");
    assert_eq!(JobKind::OpenAiCompletion.path(), "/v1/completions");
    assert_eq!(JobKind::OpenAiResponses.path(), "/v1/responses");
    assert_eq!(JobKind::AnthropicMessages.path(), "/v1/messages");
    assert!(JobKind::OpenAiChat.is_openai() && !JobKind::Chat.is_openai());
    assert!(JobKind::OpenAiResponses.is_openai() && !JobKind::AnthropicMessages.is_openai());
}

#[test]
fn a_job_can_be_retried_only_from_a_running_state() {
    assert!(JobState::Loading.can_become(JobState::Queued));
    assert!(JobState::Working.can_become(JobState::Queued));
    assert!(!JobState::Queued.can_become(JobState::Queued));
    assert!(!JobState::Queued.can_become(JobState::Done));
}

#[test]
fn states_parse_from_their_names_and_reject_others() {
    for state in JobState::ALL {
        assert_eq!(state.as_str().parse::<JobState>().unwrap(), state);
        assert_eq!(serde_json::to_value(state).unwrap(), json!(state.as_str()));
    }
    let err = "finished".parse::<JobState>().unwrap_err();
    assert!(err.to_string().contains("finished"));
}

#[test]
fn job_ids_are_ulids_and_bad_ones_are_rejected() {
    let id = JobId::new();
    assert_eq!(id.to_string().len(), 26);
    assert_eq!(id.to_string().parse::<JobId>().unwrap(), id);
    assert!("not-a-ulid".parse::<JobId>().is_err());
    assert!("../../etc/passwd".parse::<JobId>().is_err());
    let ids: Vec<JobId> = (0..1000).map(|_| JobId::new()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids strictly increase");
}

#[test]
fn submit_request_is_a_chat_request_plus_webhook_and_priority() {
    let body = json!({
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "hi"}],
        "options": {"temperature": 0.1},
        "state_webhook_url": "https://example.com/hook",
        "priority": 5,
        "unknown": true
    });
    let submit: SubmitRequest = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(submit.chat.model, "llama3.2");
    assert_eq!(
        submit.state_webhook_url.as_deref(),
        Some("https://example.com/hook")
    );
    assert_eq!(submit.priority, Some(5));
    assert!(!submit.chat.extra.contains_key("state_webhook_url"));
    assert_eq!(serde_json::to_value(&submit).unwrap(), body);
}

#[test]
fn webhook_event_serialises_its_type_field() {
    let event = WebhookEvent {
        kind: WebhookEvent::kind_for(JobState::Done),
        job_id: JobId::new(),
        state: JobState::Done,
        model: "m".into(),
        attempts: 1,
        timestamp: Utc::now(),
        error: None,
        result: Some(json!({"done": true})),
        artifacts: Some(vec![]),
    };
    let value = serde_json::to_value(&event).unwrap();
    assert_eq!(value["type"], "job.done");
    assert!(value.get("error").is_none());
    let back: WebhookEvent = serde_json::from_value(value).unwrap();
    assert_eq!(back, event);
}
