// The Chorus chat widget: one <script> tag puts a launcher bubble and a chat panel on any web page.
//
//   <script src="https://chorus.example.com/widget.js" data-key="pk_chorus_…" async></script>
//
// data-key (required): a publishable key; data-assistant: one of its bots (default: its first);
// data-api: the Chorus URL (default: where the script came from); data-open="true": start open.
//
// It calls the widget API (/widget/v1): the bot's look with the publishable key, then a visitor token
// (kept in localStorage, renewed) for the visitor's own conversation. Answers stream over SSE; a dropped
// stream is rejoined with Last-Event-ID, and a reload finds the conversation and the answer in progress.
// Markdown is rendered by marked and sanitised by DOMPurify (static/markdown.js, bundled by /widget.js);
// everything lives in a shadow root, so the host page's styles and the widget's never mix.
"use strict";

const script = document.currentScript;

function boot() {
  const dataset = (script && script.dataset) || {};
  const key = dataset.key;
  if (!key) {
    console.error("Chorus widget: the <script> tag needs data-key=\"pk_chorus_…\" (a publishable key)");
    return;
  }
  const api = (dataset.api || (script && script.src ? new URL(script.src).origin : location.origin)).replace(/\/$/, "");
  new Widget({ key, api, assistant: dataset.assistant || null, startOpen: dataset.open === "true" }).start();
}

const STREAM_MODES = ["messages-tuple", "values", "custom"];
const ICONS = {
  chat: '<svg viewBox="0 0 24 24" aria-hidden="true" fill="currentColor"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg>',
  close: '<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round"><path d="M6 6l12 12M18 6L6 18"/></svg>',
  fresh: '<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"><path d="M12 5v14M5 12h14"/></svg>',
};
// A citation the bot quotes from the knowledge base, e.g. "[Returns policy, lines 3-5]": 3-200 characters in
// brackets, with a space or a comma among them (not "[Enter]" or "[ORD-1001]"), not a markdown link.
const CITATION = /\[(?=[^[\]\n]{3,200}\])([^[\]\n]*[\s,][^[\]\n]*)\](?![(:])/g;
class HttpError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

// fetch, with a network failure as an HttpError of status 0 (no cookies: the widget's identity is its token).
async function request(url, init) {
  try {
    return await fetch(url, { ...init, credentials: "omit" });
  } catch (_) {
    throw new HttpError(0, "network", 0);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "text") node.textContent = value;
    else if (name === "html") node.innerHTML = value; // only for the widget's own icons
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) node.append(child);
  return node;
}

const HEX_COLOR = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i;

// Black or white text, whichever has the higher WCAG contrast ratio on the colour.
function contrastOn(hex) {
  const full = hex.length === 4 ? "#" + [...hex.slice(1)].map((c) => c + c).join("") : hex;
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(full.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  const light = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  const onBlack = (light + 0.05) / (0.0056 + 0.05); // #111111
  const onWhite = 1.05 / (light + 0.05);
  return onBlack >= onWhite ? "#111111" : "#ffffff";
}

// Server-sent events from a fetch body: yields {event, id, data}; ends when the body does.
async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    // Line ends may be CRLF, CR or LF; a CR at the end of a chunk waits for what follows it.
    const held = buffer.endsWith("\r") ? "\r" : "";
    buffer = buffer.slice(0, buffer.length - held.length).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message", id = null;
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("id:")) id = line.slice(3).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length || id) yield { event, id, data: data.length ? JSON.parse(data.join("\n")) : null };
    }
    buffer += held;
  }
}

class Widget {
  constructor(options) {
    this.options = options;
    // Per Chorus server, key and bot: a page given another data-api never sends this visitor's token there.
    this.storageKey = `chorus-widget:${options.api}:${options.key.slice(0, 24)}:${options.assistant || ""}`;
    this.saved = this.load();
    this.busy = false;
    this.bubbles = new Map(); // message id -> {node, text, type}
  }

  load() {
    try { return JSON.parse(localStorage.getItem(this.storageKey)) || {}; } catch (_) { return {}; }
  }

  save() {
    try { localStorage.setItem(this.storageKey, JSON.stringify(this.saved)); } catch (_) { /* private mode */ }
  }

  async start() {
    for (let attempt = 0; ; attempt++) {
      try {
        this.config = await (await this.call("GET", "/config" + (this.options.assistant
          ? `?assistant_id=${encodeURIComponent(this.options.assistant)}` : ""), { auth: "key" })).json();
        break;
      } catch (err) {
        if (err.status && err.status < 500 && err.status !== 429) {
          console.error(`Chorus widget: ${err.message}`);
          return; // a refused key, origin or bot: no launcher at all
        }
        if (attempt >= 5) {
          console.error("Chorus widget: cannot reach the chat server (or it refused this page's origin)", err);
          return;
        }
        await sleep(err.retryAfter ? err.retryAfter * 1000 : 500 * 2 ** attempt);
      }
    }
    this.render();
    // Opened by the page or left open before a reload: shown, but the page keeps its focus.
    if (this.options.startOpen || sessionStorage.getItem(this.storageKey + ":open") === "1") await this.open({ focus: false });
  }

  // ---- HTTP ------------------------------------------------------------------------------------------

  async call(method, path, { auth = "visitor", body, headers = {}, retried = false } = {}) {
    const sent = { ...headers };
    if (body !== undefined) sent["Content-Type"] = "application/json";
    if (auth === "key") sent["X-Publishable-Key"] = this.options.key;
    else sent.Authorization = `Bearer ${await this.token()}`;
    const response = await request(`${this.options.api}/widget/v1${path}`, {
      method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401 && auth === "visitor" && !retried) {
      this.saved.expiresAt = 0; // refused: renew it (the same visitor), or else a new session; then once more
      return this.call(method, path, { auth, body, headers, retried: true });
    }
    if (!response.ok) {
      let message = response.statusText;
      try { message = (await response.json()).detail || message; } catch (_) { /* not JSON */ }
      throw new HttpError(response.status, message, Number(response.headers.get("Retry-After")) || 0);
    }
    return response;
  }

  async token() {
    const soon = Date.now() + 5 * 60 * 1000;
    if (this.saved.token && this.saved.expiresAt > soon) return this.saved.token;
    const headers = { "X-Publishable-Key": this.options.key };
    if (this.saved.token) headers.Authorization = `Bearer ${this.saved.token}`; // renew: same visitor
    const url = `${this.options.api}/widget/v1/session`;
    let response = await request(url, { method: "POST", headers });
    if (response.status === 401 && this.saved.token) {
      // Too old to renew: a new visitor, whose conversations start afresh.
      this.saved = {};
      delete headers.Authorization;
      response = await request(url, { method: "POST", headers });
    }
    if (!response.ok) throw new HttpError(response.status, "no session", Number(response.headers.get("Retry-After")) || 0);
    const session = await response.json();
    this.saved.token = session.visitor_token;
    this.saved.expiresAt = Date.now() + session.expires_in * 1000;
    this.save();
    return this.saved.token;
  }

  // ---- DOM -------------------------------------------------------------------------------------------

  render() {
    const look = this.config.webchat || {};
    const colors = look.colors || {};
    const host = el("div", { id: "chorus-widget", "data-chorus-widget": "" });
    const root = host.attachShadow({ mode: "open" });
    const vars = [];
    const color = (value) => (typeof value === "string" && HEX_COLOR.test(value) ? value : null);
    if (color(colors.primary)) vars.push(`--primary:${colors.primary}`, `--on-primary:${contrastOn(colors.primary)}`);
    if (color(colors.background)) vars.push(`--bg:${colors.background}`);
    if (color(colors.text)) vars.push(`--text:${colors.text}`);
    const css = WIDGET_CSS + (vars.length ? `:host{${vars.join(";")}}` : "");
    const title = this.config.title || "Chat";
    this.wrap = el("div", { class: look.position === "bottom-left" ? "wrap left" : "wrap" });
    this.launcher = el("button", {
      class: "launcher", type: "button", "aria-label": `Open chat: ${title}`, "aria-expanded": "false",
      "aria-controls": "chorus-panel", html: ICONS.chat, onclick: () => this.toggle(),
    });
    this.log = el("div", { class: "messages", role: "log", "aria-live": "off", "aria-label": "Conversation", tabindex: "0" });
    this.live = el("div", { class: "sr-only", "aria-live": "polite", "aria-atomic": "false", "data-role": "announcer" });
    this.activity = el("div", { class: "activity", hidden: true, role: "status" });
    this.input = el("textarea", {
      rows: "1", maxlength: "4000", "aria-label": "Your message", placeholder: look.input_placeholder || "Type your message…",
      onkeydown: (e) => {
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.form.requestSubmit(); }
      },
      oninput: () => this.autosize(),
    });
    this.sendButton = el("button", { class: "send", type: "submit", text: "Send" });
    this.form = el("form", { onsubmit: (e) => { e.preventDefault(); this.submit(); } }, [
      el("label", { class: "sr-only", for: "chorus-input", text: "Your message" }), this.input, this.sendButton,
    ]);
    this.input.id = "chorus-input";
    const header = el("header", {}, [
      ...(look.avatar_url ? [el("img", { src: look.avatar_url, alt: "" })] : []),
      el("h2", { id: "chorus-title", text: title }),
      this.freshButton = el("button", { class: "icon-button", type: "button", "aria-label": "Start a new conversation",
        title: "New conversation", html: ICONS.fresh, onclick: () => this.startOver() }),
      el("button", { class: "icon-button", type: "button", "aria-label": "Close chat", title: "Close",
        html: ICONS.close, onclick: () => this.close() }),
    ]);
    this.panel = el("div", {
      class: "panel", id: "chorus-panel", role: "dialog", "aria-labelledby": "chorus-title", hidden: true,
      onkeydown: (e) => { if (e.key === "Escape") this.close(); },
    }, [header, this.log, this.activity, this.form, this.live]);
    this.wrap.append(this.launcher, this.panel);
    // A constructed style sheet: pages whose Content-Security-Policy refuses inline <style> still style it.
    if ("adoptedStyleSheets" in root && typeof CSSStyleSheet.prototype.replaceSync === "function") {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.append(el("style", { text: css }));
    }
    root.append(this.wrap);
    // On <html>, not <body>: a transform or filter on the page's body would move position:fixed with it.
    document.documentElement.append(host);
    this.root = root;
  }

  autosize() {
    this.input.style.height = "auto";
    this.input.style.height = Math.min(this.input.scrollHeight, 120) + "px";
  }

  toggle() { return this.panel.hidden ? this.open({ focus: true }) : this.close(); }

  async open({ focus }) {
    this.panel.hidden = false;
    this.wrap.classList.add("open");
    this.launcher.setAttribute("aria-expanded", "true");
    this.launcher.setAttribute("aria-label", "Close chat");
    sessionStorage.setItem(this.storageKey + ":open", "1");
    if (focus) this.input.focus();
    if (!this.opened) {
      this.opened = true;
      await this.resume();
    }
  }

  close() {
    this.panel.hidden = true;
    this.wrap.classList.remove("open");
    this.launcher.setAttribute("aria-expanded", "false");
    this.launcher.setAttribute("aria-label", `Open chat: ${this.config.title || "Chat"}`);
    sessionStorage.removeItem(this.storageKey + ":open");
    this.launcher.focus();
  }

  scroll() { this.log.scrollTop = this.log.scrollHeight; }

  notice(text, { error = false, action = null } = {}) {
    const node = el("div", { class: error ? "notice error" : "notice", role: error ? "alert" : null, text });
    if (action) node.append(el("button", { type: "button", text: action.label, onclick: () => { node.remove(); action.run(); } }));
    this.log.append(node);
    this.scroll();
    return node;
  }

  setActivity(text) {
    if (!text) { this.activity.hidden = true; this.activity.textContent = ""; return; }
    this.activity.hidden = false;
    this.activity.replaceChildren(
      el("span", { class: "dots", "aria-hidden": "true" }, [el("span"), el("span"), el("span")]),
      el("span", { text }),
    );
  }

  typing() { this.setActivity(`${this.config.title || "The assistant"} is typing…`); }

  setBusy(busy) {
    this.busy = busy;
    this.sendButton.disabled = busy;
    this.freshButton.disabled = busy;
    this.log.setAttribute("aria-busy", String(busy));
  }

  greet() {
    if (this.config.greeting) this.log.append(this.bubble("ai", this.config.greeting, "greeting").node);
  }

  bubble(type, text, id) {
    const node = el("div", { class: `msg ${type}`, "data-message-id": id || null });
    const entry = { node, text: "", type, pending: 0, paintedAt: 0, paintCost: 0 };
    this.setText(entry, text);
    if (id) this.bubbles.set(id, entry);
    return entry;
  }

  // A bot message is re-rendered (markdown, sanitising, footnotes) at most every 50 ms, or twice as long as
  // the last rendering took: a long answer streaming in does not hold the page's main thread.
  setText(entry, text) {
    entry.text = text;
    if (entry.type === "human") { entry.node.textContent = text; return; }
    if (entry.pending) return;
    const wait = entry.paintedAt + Math.max(50, 2 * entry.paintCost) - performance.now();
    entry.pending = setTimeout(() => requestAnimationFrame(() => this.paint(entry)), Math.max(0, wait));
  }

  paint(entry) {
    clearTimeout(entry.pending);
    entry.pending = 0;
    const started = performance.now();
    const follow = this.nearBottom();
    entry.node.innerHTML = renderMarkdown(entry.text);
    this.footnotes(entry.node);
    entry.paintedAt = performance.now();
    entry.paintCost = entry.paintedAt - started;
    if (follow) this.scroll();
  }

  // Follow the answer down only while the visitor has not scrolled up to read.
  nearBottom() { return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 48; }

  footnotes(node) {
    const sources = [];
    const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT, {
      acceptNode: (text) => (text.parentElement.closest("code, pre, a") ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
    });
    const texts = [];
    while (walker.nextNode()) texts.push(walker.currentNode);
    for (const text of texts) {
      const value = text.nodeValue;
      if (!CITATION.test(value)) continue;
      CITATION.lastIndex = 0;
      const parts = [];
      let last = 0;
      for (const match of value.matchAll(CITATION)) {
        parts.push(value.slice(last, match.index));
        let n = sources.indexOf(match[1]) + 1;
        if (!n) n = sources.push(match[1]);
        const link = el("a", { href: "#", "aria-label": `Source ${n}: ${match[1]}`, title: match[1], text: String(n),
          onclick: (e) => { e.preventDefault(); this.showSource(node, n); } });
        parts.push(el("sup", { class: "cite" }, [link]));
        last = match.index + match[0].length;
      }
      parts.push(value.slice(last));
      text.replaceWith(...parts);
    }
    if (!sources.length) return;
    const list = el("ol", { class: "footnotes", "aria-label": "Sources" });
    for (const source of sources) {
      const url = source.match(/https:\/\/[^\s,;]+/);
      list.append(el("li", {}, [url
        ? el("a", { href: url[0], target: "_blank", rel: "noopener noreferrer nofollow", text: source })
        : source]));
    }
    node.append(list);
  }

  showSource(node, n) {
    const item = node.querySelectorAll(".footnotes li")[n - 1];
    if (!item) return;
    item.classList.add("flash");
    item.setAttribute("tabindex", "-1");
    item.focus();
    setTimeout(() => item.classList.remove("flash"), 1500);
  }

  // A whole message for screen readers, once: its words without the footnote marks and source list.
  announce(entry) {
    if (entry.pending) this.paint(entry);
    const copy = entry.node.cloneNode(true);
    copy.querySelectorAll(".footnotes, sup.cite").forEach((n) => n.remove());
    const text = copy.textContent.trim();
    if (text) this.live.append(el("p", { text: `${this.config.title || "Assistant"}: ${text}` }));
  }

  escalated() {
    if (this.log.querySelector(".escalated")) return;
    this.log.append(el("div", { class: "escalated", role: "status",
      text: "You're being connected with a member of our team. They will reply here." }));
    this.scroll();
  }

  // ---- Conversation -----------------------------------------------------------------------------------

  // The log as the server has it: the greeting, then the visitor's and the bot's messages in order.
  showTranscript(state) {
    this.log.replaceChildren();
    this.bubbles.clear();
    this.greet();
    for (const message of state ? state.messages : []) {
      this.log.append(this.bubble(message.type, message.content, message.id).node);
    }
    if (state && state.escalated) this.escalated();
    this.scroll();
  }

  async resume() {
    this.showTranscript(null);
    if (!this.saved.thread) return;
    let state;
    try {
      state = await (await this.call("GET", `/threads/${this.saved.thread}/state`)).json();
    } catch (err) {
      if (err.status === 404) { this.saved.thread = null; this.save(); return; }
      this.notice("We couldn't load your conversation.", { error: true, action: { label: "Retry", run: () => this.resume() } });
      return;
    }
    this.showTranscript(state);
    if (state.active_run) {
      this.setBusy(true);
      this.typing();
      await this.follow(null, `/threads/${this.saved.thread}/runs/${state.active_run.run_id}`, "-1");
    }
  }

  async startOver() {
    if (this.busy) return;
    this.saved.thread = null;
    this.save();
    this.showTranscript(null);
    this.input.focus();
  }

  async submit() {
    const text = this.input.value.trim();
    if (!text || this.busy) return;
    this.input.value = "";
    this.autosize();
    await this.send(text);
  }

  async send(text, { freshThread = false } = {}) {
    this.setBusy(true);
    const mine = this.bubble("human", text);
    this.log.append(mine.node);
    this.scroll();
    this.typing();
    let response;
    try {
      if (!this.saved.thread || freshThread) {
        this.saved.thread = (await (await this.call("POST", "/threads", { body: {} })).json()).thread_id;
        this.save();
      }
      response = await this.call("POST", `/threads/${this.saved.thread}/runs/stream`, {
        body: { input: { messages: [{ role: "user", content: text }] }, stream_mode: STREAM_MODES },
      });
    } catch (err) {
      this.setActivity(null);
      this.setBusy(false);
      mine.node.remove();
      if (err.status === 404 && !freshThread) return this.send(text, { freshThread: true }); // the thread expired
      mine.node.classList.add("failed");
      this.log.append(mine.node);
      this.notice(this.explain(err), { error: true, action: { label: "Try again", run: () => { mine.node.remove(); this.retry(text); } } });
      return;
    }
    // Content-Location: /widget/v1/threads/{thread}/runs/{run}, the run to rejoin after a drop.
    const runId = (response.headers.get("Content-Location") || "").split("/").pop();
    await this.follow(response, `/threads/${this.saved.thread}/runs/${runId}`, null);
  }

  // Send again, unless the message did reach the server before the connection failed (then follow its run).
  async retry(text) {
    if (this.saved.thread) {
      try {
        const state = await (await this.call("GET", `/threads/${this.saved.thread}/state`)).json();
        const last = state.messages[state.messages.length - 1];
        if (state.active_run || (last && last.type === "human" && last.content === text)) {
          this.showTranscript(state);
          if (!state.active_run) return;
          this.setBusy(true);
          this.typing();
          return this.follow(null, `/threads/${this.saved.thread}/runs/${state.active_run.run_id}`, "-1");
        }
      } catch (_) { /* not reachable yet: sending again says so */ }
    }
    return this.send(text);
  }

  explain(err) {
    if (err.status === 429) return `You're sending messages too quickly. Please wait ${err.retryAfter || 30} seconds.`;
    if (err.status === 409) return "I'm still answering your last message.";
    if (err.status === 0) return "You seem to be offline. Check your connection and try again.";
    return "Sorry, your message couldn't be sent.";
  }

  // The answer's events until the run ends; a dropped connection rejoins after the last event seen.
  async follow(response, runPath, lastId) {
    const turn = { before: new Set(this.bubbles.keys()), shown: new Map(), tools: new Map(), failed: false };
    let failures = 0;
    let reconnecting = null;
    for (;;) {
      let retryAfter = 0;
      try {
        if (!response) {
          response = await this.call("GET", `${runPath}/stream`, { headers: lastId ? { "Last-Event-ID": lastId } : {} });
        }
        if (reconnecting) { reconnecting.remove(); reconnecting = null; }
        for await (const event of readEvents(response)) {
          failures = 0;
          if (event.id) lastId = event.id;
          this.handle(event, turn);
        }
        response = null;
        // The stream ended: the run is over, unless a proxy cut a long stream cleanly.
        const state = await (await this.call("GET", `/threads/${this.saved.thread}/state`)).json();
        const still = state.active_run && runPath.endsWith(state.active_run.run_id);
        if (!still) { this.finish(turn, state); return; }
        failures += 1; // a stream that keeps ending early is rejoined with a growing pause, like a failure
      } catch (err) {
        response = null;
        if (err.status === 404) { this.finish(turn, null); return; }
        retryAfter = err.retryAfter || 0;
        failures += 1;
        if (!reconnecting) reconnecting = this.notice("Connection lost. Reconnecting…");
      }
      if (failures > 8) {
        if (reconnecting) reconnecting.remove();
        this.setActivity(null);
        this.setBusy(false);
        this.notice("We lost the connection.", { error: true, action: { label: "Reconnect", run: () => {
          this.setBusy(true); this.typing(); this.follow(null, runPath, lastId);
        } } });
        return;
      }
      const pause = Math.max(retryAfter * 1000, Math.min(250 * 2 ** failures, 8000));
      const online = new AbortController();
      await Promise.race([sleep(pause), new Promise((r) => addEventListener("online", r, { once: true, signal: online.signal }))]);
      online.abort();
    }
  }

  handle({ event, data }, turn) {
    const base = event.split("|")[0];
    if (base === "messages") {
      const [chunk] = data;
      if (!chunk || !/^(ai|AIMessageChunk)$/.test(chunk.type)) return;
      const text = typeof chunk.content === "string" ? chunk.content : "";
      if (text) this.streamText(turn, chunk.id, text, chunk.type === "ai");
    } else if (base === "custom" && data && data.type === "tool") {
      if (data.status === "running") turn.tools.set(data.tool_call_id, data.tool);
      else turn.tools.delete(data.tool_call_id);
      const running = [...turn.tools.values()].pop();
      if (running) this.setActivity(this.toolStatus(running));
      else this.typing();
    } else if (base === "values" && data) {
      if (data.escalated) this.escalated();
    } else if (base === "error") {
      turn.failed = true;
    }
  }

  toolStatus(tool) {
    const known = this.config.tool_status || {};
    return known[tool] || known["*"] || "Working on it…";
  }

  // Tokens of one message (whole = the complete message at once).
  streamText(turn, id, text, whole) {
    let entry = turn.shown.get(id);
    if (!entry) {
      entry = this.bubbles.get(id); // already shown (a reload mid-answer): replayed from its start
      if (entry) entry.text = "";
      else {
        entry = this.bubble("ai", "", id);
        this.log.append(entry.node);
      }
      turn.shown.set(id, entry);
      this.setActivity(null);
    }
    this.setText(entry, whole ? text : entry.text + text);
  }

  // The turn is over: the log becomes the server's transcript (which settles every answer, drops a half
  // answer a retried step replaced, and puts another tab's messages in their place), and each new answer
  // is announced once, whole.
  finish(turn, state) {
    this.setActivity(null);
    this.setBusy(false);
    if (state) {
      this.showTranscript(state);
      for (const message of state.messages) {
        if (message.type === "ai" && !turn.before.has(message.id)) this.announce(this.bubbles.get(message.id));
      }
    }
    if (turn.failed) this.notice("Sorry, something went wrong while answering. Please try again.", { error: true });
  }
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
