"""Model management with the official `ollama` Python library through foreman: what a new
user does with a shared GPU box (pull, list, chat, copy, create, push, delete), with
foreman's poll interval far longer than the test, so every change must show at once."""

import ollama
import pytest
from conftest import FOREMAN_URL, MODEL, PULLABLE_MODEL


@pytest.fixture
def client():
    return ollama.Client(host=FOREMAN_URL)


def names(client):
    return [m.model for m in client.list().models]


def test_pull_streams_layer_progress_then_the_model_is_listed_and_answers(client):
    progress = list(client.pull(PULLABLE_MODEL, stream=True))
    statuses = [p.status for p in progress]
    assert statuses[0] == "pulling manifest"
    assert statuses[-1] == "success"
    layers = [p for p in progress if p.digest]
    assert layers, "a pull reports per-layer bytes"
    totals = {p.digest: p.total for p in layers}
    last = {p.digest: p.completed for p in layers}
    assert len(totals) >= 2
    assert all(last[d] == totals[d] for d in totals)
    assert PULLABLE_MODEL in names(client)

    answer = client.chat(model=PULLABLE_MODEL, messages=[{"role": "user", "content": "hi"}])
    assert answer.message.content

    client.delete(PULLABLE_MODEL)
    assert PULLABLE_MODEL not in names(client)


def test_pull_without_streaming_answers_success(client):
    assert client.pull(PULLABLE_MODEL).status == "success"
    assert PULLABLE_MODEL in names(client)
    client.delete(PULLABLE_MODEL)


def test_copy_then_delete_show_in_the_list_at_once(client):
    client.copy(MODEL, "llama3.2-copy")
    assert "llama3.2-copy:latest" in names(client)
    client.delete("llama3.2-copy")
    assert "llama3.2-copy:latest" not in names(client)


def test_create_from_an_existing_model_streams_status_and_lists_it(client):
    progress = list(client.create(model="terse", from_=MODEL, system="Answer in one word.", stream=True))
    assert progress[-1].status == "success"
    assert "terse:latest" in names(client)
    shown = client.show("terse")
    assert shown.details is not None
    client.delete("terse")
    assert "terse:latest" not in names(client)


def test_push_streams_progress_to_success(client):
    progress = list(client.push(MODEL, stream=True))
    assert progress[-1].status == "success"


def test_deleting_an_unknown_model_raises_404(client):
    with pytest.raises(ollama.ResponseError) as raised:
        client.delete("never-pulled")
    assert raised.value.status_code == 404


def test_pulling_an_unknown_model_raises_an_error(client):
    with pytest.raises(ollama.ResponseError):
        client.pull("no-such-model-anywhere")
