// Chorus webchat, the operator's page: lists the tenant's chatbots, streams a run's tokens over SSE
// (messages-tuple), shows tool calls and results (without the notes they carry for the model), answers as
// markdown (static/markdown.js), and the escalated state. Plain JS, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { key: null, assistant: null, thread: null, busy: false, assistants: [] };

function readKey() {
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get("key");
  if (fromUrl) {
    localStorage.setItem("chorus-key", fromUrl);
    params.delete("key");
    history.replaceState(null, "", location.pathname + (params.toString() ? "?" + params : ""));
  }
  return localStorage.getItem("chorus-key");
}

async function api(path, options = {}) {
  const res = await fetch(path, {
    ...options,
    headers: { "Content-Type": "application/json", "X-Api-Key": state.key, ...(options.headers || {}) },
  });
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail || detail; } catch (_) { /* not JSON */ }
    const err = new Error(detail);
    err.status = res.status;
    throw err;
  }
  return res;
}

function bubble(kind, text) {
  const el = document.createElement("div");
  el.className = "msg " + kind;
  if (kind === "ai") setMarkdown(el, text);
  else el.textContent = text;
  $("log").appendChild(el);
  $("log").scrollTop = $("log").scrollHeight;
  return el;
}

// Rendered at most once a frame while tokens stream in.
function setMarkdown(el, text) {
  el.dataset.text = text;
  if (el.dataset.pending) return;
  el.dataset.pending = "1";
  requestAnimationFrame(() => {
    delete el.dataset.pending;
    el.innerHTML = renderMarkdown(el.dataset.text);
    $("log").scrollTop = $("log").scrollHeight;
  });
}

// A tool's result as the operator reads it: its data, without the note it carries for the model.
function toolResult(content) {
  if (typeof content !== "string") return JSON.stringify(content);
  try {
    const data = JSON.parse(content);
    if (data && typeof data === "object" && !Array.isArray(data)) delete data.note;
    return JSON.stringify(data);
  } catch (_) {
    return content;
  }
}

function setStatus(text) { $("status").textContent = text; }

function setEscalated(on) { $("escalated-banner").hidden = !on; }

async function loadBots() {
  const res = await api("/assistants/search", { method: "POST", body: JSON.stringify({ graph_id: "chatbot", limit: 100 }) });
  state.assistants = await res.json();
  const select = $("bot");
  select.innerHTML = "";
  for (const a of state.assistants) {
    const opt = document.createElement("option");
    opt.value = a.assistant_id;
    opt.textContent = `${a.name} (v${a.version})`;
    select.appendChild(opt);
  }
  if (!state.assistants.length) { setStatus("no chatbots yet: upload a config"); return; }
  await openThread();
}

function threadKey() { return `chorus-thread-${state.assistant.assistant_id}`; }

function greet() {
  const first = state.assistant && state.assistant.context && state.assistant.context.first_message;
  if (first) bubble("ai", first);
}

async function newThread() {
  state.assistant = state.assistants.find((a) => a.assistant_id === $("bot").value);
  const res = await api("/threads", { method: "POST", body: JSON.stringify({ metadata: { channel: "webchat" } }) });
  state.thread = (await res.json()).thread_id;
  localStorage.setItem(threadKey(), state.thread);
  $("log").innerHTML = "";
  setEscalated(false);
  greet();
  setStatus("ready");
}

function render(message) {
  const text = typeof message.content === "string" ? message.content : JSON.stringify(message.content);
  if (message.type === "human") bubble("user", text);
  else if (message.type === "tool") bubble(message.status === "error" ? "tool error" : "tool", `← ${message.name}: ${toolResult(message.content)}`);
  else if (message.type === "ai") {
    for (const call of message.tool_calls || []) bubble("tool", `→ ${call.name}(${JSON.stringify(call.args)})`);
    if (text) bubble("ai", text);
  }
}

async function openThread() {
  // Resume this bot's last conversation in this browser (it survives server restarts), else start one.
  state.assistant = state.assistants.find((a) => a.assistant_id === $("bot").value);
  const saved = localStorage.getItem(threadKey());
  if (!saved) return newThread();
  let values;
  try {
    values = (await (await api(`/threads/${saved}/state`)).json()).values || {};
  } catch (err) {
    if (err.status === 404) return newThread();
    throw err;
  }
  state.thread = saved;
  $("log").innerHTML = "";
  greet();
  for (const message of values.messages || []) render(message);
  setEscalated(Boolean(values.escalated));
  setStatus("ready");
}

function* sseEvents(buffer) {
  // Yields complete "event/data" blocks from the buffer; returns the unparsed rest via .rest.
  let idx;
  while ((idx = buffer.text.indexOf("\n\n")) >= 0) {
    const block = buffer.text.slice(0, idx);
    buffer.text = buffer.text.slice(idx + 2);
    let event = "message", data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trim();
    }
    yield { event, data: data ? JSON.parse(data) : null };
  }
}

async function send(text) {
  if (state.busy || !state.thread) return;
  state.busy = true;
  $("send").disabled = true;
  bubble("user", text);
  setStatus("thinking…");
  const bubbles = new Map();
  const toolCalls = new Map();
  try {
    const res = await api(`/threads/${state.thread}/runs/stream`, {
      method: "POST",
      body: JSON.stringify({
        assistant_id: state.assistant.assistant_id,
        input: { messages: [{ role: "user", content: text }] },
        stream_mode: ["messages-tuple", "values"],
        multitask_strategy: "reject",
      }),
    });
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const buffer = { text: "" };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer.text += decoder.decode(value, { stream: true });
      for (const { event, data } of sseEvents(buffer)) handleEvent(event, data, bubbles, toolCalls);
    }
    setStatus("ready");
  } catch (err) {
    bubble("error", err.message);
    setStatus("error");
  } finally {
    state.busy = false;
    $("send").disabled = false;
  }
}

function handleEvent(event, data, bubbles, toolCalls) {
  if (event === "messages") {
    const [msg, meta] = data;
    if (msg.type === "tool") {
      const cls = msg.status === "error" ? "tool error" : "tool";
      bubble(cls, `← ${msg.name}: ${toolResult(msg.content)}`);
      return;
    }
    if (msg.type !== "ai" && msg.type !== "AIMessageChunk") return;
    for (const chunk of msg.tool_call_chunks || []) {
      if (chunk.name && !toolCalls.has(chunk.id)) {
        toolCalls.set(chunk.id, true);
        bubble("tool", `→ ${chunk.name}(${chunk.args || ""})`);
      }
    }
    const text = typeof msg.content === "string" ? msg.content : "";
    if (!text) return;
    let el = bubbles.get(msg.id);
    if (!el) { el = bubble("ai", ""); bubbles.set(msg.id, el); }
    setMarkdown(el, (el.dataset.text || "") + text);
    $("log").scrollTop = $("log").scrollHeight;
  } else if (event === "values") {
    setEscalated(Boolean(data && data.escalated));
  } else if (event === "error") {
    bubble("error", data.message || "the run failed");
  }
}

async function start() {
  state.key = readKey();
  if (!state.key) { $("key-panel").hidden = false; setStatus("needs an API key"); return; }
  try {
    await loadBots();
  } catch (err) {
    if (err.status === 401) { localStorage.removeItem("chorus-key"); $("key-panel").hidden = false; }
    setStatus(err.message);
  }
}

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  localStorage.setItem("chorus-key", $("key-input").value.trim());
  $("key-panel").hidden = true;
  start();
});
$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("message").value.trim();
  if (!text) return;
  $("message").value = "";
  send(text);
});
$("bot").addEventListener("change", openThread);
$("new-thread").addEventListener("click", newThread);
start();
