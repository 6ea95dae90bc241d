"""The official `ollama` Python library against foreman, as a new user would use it."""

import ollama
import pytest
from conftest import FOREMAN_URL, MODEL, OTHER_MODEL, assert_calls_never_overlap


@pytest.fixture
def client():
    return ollama.Client(host=FOREMAN_URL)


def test_list_shows_the_targets_models(client):
    names = [m.model for m in client.list().models]
    assert "llama3.2:latest" in names


def test_ps_lists_loaded_models(client):
    client.generate(model=MODEL, prompt="warm up")
    loaded = [m.model for m in client.ps().models]
    assert "llama3.2:latest" in loaded


def test_show_describes_a_model(client):
    shown = client.show(MODEL)
    assert shown.details is not None


def test_chat_without_streaming(client):
    response = client.chat(model=MODEL, messages=[{"role": "user", "content": "Why is the sky blue?"}])
    assert response.message.role == "assistant"
    assert response.message.content
    assert response.done


def test_chat_streaming_yields_chunks_then_done(client):
    chunks = list(client.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True))
    assert len(chunks) > 2
    assert chunks[-1].done
    assert chunks[-1].eval_count
    assert "".join(c.message.content for c in chunks)


def test_generate_with_and_without_streaming(client):
    whole = client.generate(model=MODEL, prompt="hello")
    assert whole.response and whole.done
    streamed = list(client.generate(model=MODEL, prompt="hello", stream=True))
    assert streamed[-1].done
    assert "".join(c.response for c in streamed)


def test_embed_one_and_many(client):
    one = client.embed(model="nomic-embed-text", input="a sentence")
    assert len(one.embeddings) == 1
    many = client.embed(model="nomic-embed-text", input=["a", "b", "c"])
    assert len(many.embeddings) == 3
    legacy = client.embeddings(model="nomic-embed-text", prompt="old api")
    assert legacy.embedding


def test_unknown_model_raises_404_with_ollamas_message(client):
    with pytest.raises(ollama.ResponseError) as raised:
        client.chat(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 404
    assert 'model "no-such-model" not found' in raised.value.error


def test_concurrent_chats_never_overlap_on_the_target(client):
    def chat(i):
        model = MODEL if i % 2 else OTHER_MODEL
        stream = i % 3 == 0
        result = client.chat(model=model, messages=[{"role": "user", "content": f"q{i}"}], stream=stream)
        if stream:
            list(result)

    assert_calls_never_overlap(6, chat)
