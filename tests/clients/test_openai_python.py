"""The official `openai` Python SDK against foreman's OpenAI-compatible `/v1` routes, as
someone moving an OpenAI app onto a shared Ollama would use it."""

import openai
import pytest
from conftest import FOREMAN_URL, MODEL, OTHER_MODEL, assert_calls_never_overlap


@pytest.fixture
def client():
    # foreman here runs without FOREMAN_AUTH_TOKEN; with one, it is the api_key.
    return openai.OpenAI(base_url=FOREMAN_URL + "/v1", api_key="unused", max_retries=0)


def test_models_list_shows_the_targets_models(client):
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert "llama3.2:latest" in ids
    assert all(m.object == "model" and m.owned_by for m in models.data)


def test_models_retrieve_describes_one_model(client):
    model = client.models.retrieve("qwen2.5:0.5b")
    assert model.id == "qwen2.5:0.5b"
    assert model.owned_by == "library"
    assert model.created > 0


def test_chat_completion_without_streaming(client):
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Why is the sky blue?"}]
    )
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason == "stop"
    assert completion.usage.completion_tokens > 0


def test_chat_completion_streaming_yields_deltas(client):
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    assert len(chunks) > 2
    assert chunks[-1].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Simulated answer")


def test_completion_with_max_tokens(client):
    completion = client.completions.create(model=MODEL, prompt="Say hello", max_tokens=3)
    assert completion.choices[0].text
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 3


def test_embeddings_one_and_many(client):
    one = client.embeddings.create(model="nomic-embed-text", input="a sentence")
    assert len(one.data) == 1 and one.data[0].embedding
    many = client.embeddings.create(model="nomic-embed-text", input=["a", "b", "c"])
    assert [d.index for d in many.data] == [0, 1, 2]


def test_unknown_model_raises_not_found(client):
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert raised.value.status_code == 404
    assert raised.value.code == "model_not_found"
    assert 'model "no-such-model" not found' in raised.value.message
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_concurrent_openai_chats_never_overlap_on_the_target(client):
    def chat(i):
        stream = client.chat.completions.create(
            model=MODEL if i % 2 else OTHER_MODEL,
            messages=[{"role": "user", "content": f"q{i}"}],
            stream=i % 3 == 0,
        )
        if i % 3 == 0:
            list(stream)

    assert_calls_never_overlap(4, chat)
