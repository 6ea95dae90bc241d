"""`openai`'s Responses API (`client.responses.create`) against foreman's `/v1/responses`."""

import openai
import pytest
from conftest import FOREMAN_URL, MODEL, OTHER_MODEL, assert_calls_never_overlap


@pytest.fixture
def client():
    return openai.OpenAI(base_url=FOREMAN_URL + "/v1", api_key="unused", max_retries=0)


def test_responses_create_answers_with_output_text(client):
    response = client.responses.create(model=MODEL, input="Why is the sky blue?")
    assert response.status == "completed"
    assert response.output_text
    assert response.usage.output_tokens > 0


def test_responses_stream_yields_text_deltas_then_completed(client):
    events = list(client.responses.create(model=MODEL, input="hi", stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 2
    assert "".join(deltas) == events[-1].response.output_text


def test_unknown_model_raises_not_found(client):
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="hi")


def test_concurrent_responses_never_overlap_on_the_target(client):
    def call(i):
        model = MODEL if i % 2 else OTHER_MODEL
        if i % 3 == 0:
            list(client.responses.create(model=model, input=f"q{i}", stream=True))
        else:
            client.responses.create(model=model, input=f"q{i}")

    assert_calls_never_overlap(6, call)
