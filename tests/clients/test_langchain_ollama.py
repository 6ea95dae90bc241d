"""LangChain's `ChatOllama` (langchain-ollama) against foreman, as a LangChain app uses a
shared Ollama: invoke and stream."""

from conftest import FOREMAN_URL, MODEL
from langchain_ollama import ChatOllama, OllamaEmbeddings


def test_chat_ollama_invoke_answers():
    llm = ChatOllama(model=MODEL, base_url=FOREMAN_URL)
    answer = llm.invoke("Why is the sky blue?")
    assert answer.content
    assert answer.usage_metadata["output_tokens"] > 0


def test_chat_ollama_stream_yields_chunks():
    llm = ChatOllama(model=MODEL, base_url=FOREMAN_URL)
    chunks = list(llm.stream("hi"))
    assert len(chunks) > 2
    assert "".join(c.content for c in chunks)


def test_ollama_embeddings_embed_documents():
    embeddings = OllamaEmbeddings(model="nomic-embed-text", base_url=FOREMAN_URL)
    vectors = embeddings.embed_documents(["a", "b"])
    assert len(vectors) == 2 and len(vectors[0]) > 0
