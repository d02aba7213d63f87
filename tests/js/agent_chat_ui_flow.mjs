// agent-chat-ui's request sequence through the official LangGraph JS SDK (@langchain/langgraph-sdk), run by
// tests/test_js_sdk.py against a live Chorus server. Prints one JSON object of what it saw; the Python
// test asserts on it. Env: CHORUS_URL, CHORUS_KEY, ASSISTANT_ID (the example bot), SLOW_ASSISTANT_ID.
import { Client } from "@langchain/langgraph-sdk";

const client = new Client({ apiUrl: process.env.CHORUS_URL, apiKey: process.env.CHORUS_KEY });
const assistantId = process.env.ASSISTANT_ID;
const slowId = process.env.SLOW_ASSISTANT_ID;
const out = {};

const human = (content) => ({ messages: [{ type: "human", content }] });
const useStreamOptions = {
  streamMode: ["values", "messages-tuple", "custom", "updates"],
  streamSubgraphs: true,
  streamResumable: true,
  onDisconnect: "continue",
};

// 1. Send: a new thread, then the body useStream sends; the network drops after a few tokens.
const thread = await client.threads.create({ metadata: {} });
const threadId = thread.thread_id;
const firstPart = [];
let runId = null;
for await (const chunk of client.runs.stream(threadId, slowId, {
  input: human("Where is my order ORD-1001?"),
  ...useStreamOptions,
})) {
  if (chunk.event === "metadata") runId = chunk.data.run_id;
  else firstPart.push({ id: chunk.id, event: chunk.event, data: chunk.data });
  if (firstPart.filter((c) => c.event === "messages").length === 3) break;
}
out.first_events = firstPart.map((c) => c.event);
out.first_ids = firstPart.map((c) => c.id);

// 2. Reload and rejoin with the last event id: exactly what was missed, then the run's end.
const rest = [];
for await (const chunk of client.runs.joinStream(threadId, runId, { lastEventId: firstPart.at(-1).id })) {
  if (chunk.event !== "metadata") rest.push({ id: chunk.id, event: chunk.event, data: chunk.data });
}
const all = [];
for await (const chunk of client.runs.joinStream(threadId, runId, { lastEventId: "-1" })) {
  if (chunk.event !== "metadata") all.push({ id: chunk.id, event: chunk.event });
}
out.rejoined_ids = [...firstPart.map((c) => c.id), ...rest.map((c) => c.id)];
out.all_ids = all.map((c) => c.id);
out.custom = [...firstPart, ...rest].filter((c) => c.event === "custom").map((c) => c.data);
out.final_answer = rest.filter((c) => c.event === "values").at(-1)?.data.messages.at(-1).content;

// 3. Thread list: agent-chat-ui's history sidebar.
const listed = await client.threads.search({ metadata: { graph_id: "chatbot" }, limit: 100, offset: 0 });
out.listed = listed.some((t) => t.thread_id === threadId);

// 4. Edit the question: fork from the state before it (useStream's firstSeenState.parent_checkpoint).
let history = await client.threads.getHistory(threadId, { limit: 100 });
const question = history[0].values.messages.find((m) => m.type === "human");
const firstSeen = history.filter((s) => s.values.messages?.some((m) => m.id === question.id)).at(-1);
const edited = await client.runs.wait(threadId, slowId, {
  input: human("Where is my order ORD-1003?"),
  checkpoint: firstSeen.parent_checkpoint,
});
out.edited_humans = edited.messages.filter((m) => m.type === "human").map((m) => m.content);

// 5. Regenerate the last answer: no input, from the state before it.
history = await client.threads.getHistory(threadId, { limit: 100 });
const answer = history[0].values.messages.at(-1);
const beforeAnswer = history.filter((s) => s.values.messages?.some((m) => m.id === answer.id)).at(-1);
const regenerated = await client.runs.wait(threadId, slowId, {
  input: null,
  checkpoint: beforeAnswer.parent_checkpoint,
});
out.regenerated = {
  humans: regenerated.messages.filter((m) => m.type === "human").length,
  new_answer: regenerated.messages.at(-1).id !== answer.id,
};

// 6. Stop: a stream sent with on_disconnect "cancel" is aborted after its first token.
const stopThread = (await client.threads.create()).thread_id;
const controller = new AbortController();
let stopRun = null;
try {
  for await (const chunk of client.runs.stream(stopThread, slowId, {
    input: human("hello"),
    streamMode: ["messages-tuple"],
    onDisconnect: "cancel",
    signal: controller.signal,
  })) {
    if (chunk.event === "metadata") stopRun = chunk.data.run_id;
    if (chunk.event === "messages") controller.abort();
  }
} catch (e) {
  if (e.name !== "AbortError") throw e;
}
let stopped = null;
for (let i = 0; i < 100; i++) {
  stopped = (await client.runs.get(stopThread, stopRun)).status;
  if (stopped !== "running" && stopped !== "pending") break;
  await new Promise((r) => setTimeout(r, 100));
}
out.stopped_status = stopped;

// 7. Cancel a background run and wait for it (the SDK expects 202/204, no body).
const cancelThread = (await client.threads.create()).thread_id;
const background = await client.runs.create(cancelThread, slowId, { input: human("hello") });
await client.runs.cancel(cancelThread, background.run_id, true);
out.cancelled_status = (await client.runs.get(cancelThread, background.run_id)).status;

// 8. An unknown stream mode is refused with a message naming it.
try {
  await client.runs.create(cancelThread, assistantId, { input: human("hi"), streamMode: ["telepathy"] });
  out.unknown_mode = "accepted";
} catch (e) {
  out.unknown_mode = String(e.message ?? e);
}

console.log(JSON.stringify(out));
