"""The official `anthropic` Python SDK against foreman's `/v1/messages` (Ollama's
Anthropic-compatible route), as an app written for Claude would use a shared Ollama."""

import anthropic
import pytest
from conftest import FOREMAN_URL, MODEL, OTHER_MODEL, assert_calls_never_overlap


@pytest.fixture
def client():
    # The SDK appends /v1/messages to the base URL itself.
    return anthropic.Anthropic(base_url=FOREMAN_URL, api_key="unused", max_retries=0)


def test_messages_create_answers_with_text_and_usage(client):
    message = client.messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hello, how are you?"}]
    )
    assert message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.output_tokens > 0


def test_messages_stream_yields_text_deltas_and_a_final_message(client):
    with client.messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Count to three"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 2
    assert "".join(pieces) == final.content[0].text
    assert final.usage.output_tokens > 0


def test_max_tokens_stops_the_answer(client):
    message = client.messages.create(
        model=MODEL, max_tokens=3, messages=[{"role": "user", "content": "Tell me a story"}]
    )
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3


def test_unknown_model_raises_not_found(client):
    with pytest.raises(anthropic.NotFoundError) as raised:
        client.messages.create(
            model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    assert raised.value.status_code == 404


def test_concurrent_messages_never_overlap_on_the_target(client):
    def call(i):
        model = MODEL if i % 2 else OTHER_MODEL
        if i % 3 == 0:
            with client.messages.stream(
                model=model, max_tokens=16, messages=[{"role": "user", "content": f"q{i}"}]
            ) as stream:
                list(stream.text_stream)
        else:
            client.messages.create(
                model=model, max_tokens=16, messages=[{"role": "user", "content": f"q{i}"}]
            )

    assert_calls_never_overlap(6, call)
