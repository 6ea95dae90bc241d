// The `ollama` npm package against foreman, as a JavaScript app would use a shared Ollama:
// list, a streamed chat, and a pull with progress. Run by scripts/client-tests.sh.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Ollama } from "ollama";

const ollama = new Ollama({ host: process.env.FOREMAN_URL });
const MODEL = "llama3.2";
const PULLABLE = "smollm2:135m";

test("list shows the target's models", async () => {
  const { models } = await ollama.list();
  assert.ok(models.some((m) => m.model === "llama3.2:latest"));
});

test("chat streams chunks and ends with done", async () => {
  const stream = await ollama.chat({
    model: MODEL,
    messages: [{ role: "user", content: "hi" }],
    stream: true,
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.length > 2);
  assert.equal(chunks.at(-1).done, true);
  assert.ok(chunks.map((c) => c.message.content).join("").length > 0);
});

test("chat without streaming answers once", async () => {
  const answer = await ollama.chat({ model: MODEL, messages: [{ role: "user", content: "hi" }] });
  assert.equal(answer.message.role, "assistant");
  assert.ok(answer.message.content);
});

test("pull streams per-layer progress, then the model is listed", async () => {
  const stream = await ollama.pull({ model: PULLABLE, stream: true });
  const progress = [];
  for await (const part of stream) progress.push(part);
  assert.equal(progress[0].status, "pulling manifest");
  assert.equal(progress.at(-1).status, "success");
  const layers = progress.filter((p) => p.digest);
  assert.ok(layers.length > 0);
  const { models } = await ollama.list();
  assert.ok(models.some((m) => m.model === PULLABLE));
  await ollama.delete({ model: PULLABLE });
  const after = await ollama.list();
  assert.ok(!after.models.some((m) => m.model === PULLABLE));
});

test("an unknown model is a 404 error", async () => {
  await assert.rejects(
    ollama.chat({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] }),
    (err) => err.status_code === 404,
  );
});
