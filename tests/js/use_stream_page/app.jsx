// A minimal chat page on the official React hook (`useStream` from @langchain/langgraph-sdk/react), set up
// the way agent-chat-ui sets it up: thread id in the address bar, full state history for edits, resumable
// runs rejoined after a reload. tests/test_use_stream_browser.py bundles it with esbuild and drives it in
// Chromium. Query: ?apiUrl=…&assistantId=…&threadId=…; the API key is read from localStorage like
// agent-chat-ui's ("lg:chat:apiKey").
import { useState } from "react";
import { createRoot } from "react-dom/client";
import { useStream } from "@langchain/langgraph-sdk/react";

const query = new URLSearchParams(window.location.search);
const apiUrl = query.get("apiUrl");
const assistantId = query.get("assistantId") ?? "chatbot";
const apiKey = window.localStorage.getItem("lg:chat:apiKey") ?? undefined;

function useThreadIdInUrl() {
  const [threadId, setThreadId] = useState(() => new URLSearchParams(window.location.search).get("threadId"));
  const update = (id) => {
    const url = new URL(window.location.href);
    if (id) url.searchParams.set("threadId", id);
    else url.searchParams.delete("threadId");
    window.history.replaceState(null, "", url);
    setThreadId(id);
  };
  return [threadId, update];
}

function textOf(content) {
  if (typeof content === "string") return content;
  return (content ?? [])
    .filter((block) => block.type === "text")
    .map((block) => block.text)
    .join("");
}

function HumanMessage({ stream, message }) {
  const [editing, setEditing] = useState(false);
  const [value, setValue] = useState("");
  const text = textOf(message.content);
  const save = () => {
    setEditing(false);
    // Fork from the state just before this message: the edited question replaces it on a new branch.
    const meta = stream.getMessagesMetadata(message);
    const edited = { type: "human", content: value };
    stream.submit(
      { messages: [edited] },
      {
        checkpoint: meta?.firstSeenState?.parent_checkpoint,
        streamMode: ["values"],
        optimisticValues: (prev) => {
          const before = meta?.firstSeenState?.values;
          return before ? { ...before, messages: [...(before.messages ?? []), edited] } : prev;
        },
      },
    );
  };
  if (editing) {
    return (
      <div className="msg human editing">
        <textarea className="edit-text" value={value} onChange={(e) => setValue(e.target.value)} />
        <button className="save-edit" onClick={save}>
          Save
        </button>
      </div>
    );
  }
  return (
    <div className="msg human" data-id={message.id}>
      <span className="text">{text}</span>
      <button
        className="edit"
        disabled={stream.isLoading}
        onClick={() => {
          setValue(text);
          setEditing(true);
        }}
      >
        Edit
      </button>
    </div>
  );
}

function AiMessage({ stream, message }) {
  const text = textOf(message.content);
  if (!text && message.tool_calls?.length) {
    return <div className="msg tool-call">calling {message.tool_calls.map((c) => c.name).join(", ")}</div>;
  }
  const regenerate = () => {
    const meta = stream.getMessagesMetadata(message);
    stream.submit(undefined, { checkpoint: meta?.firstSeenState?.parent_checkpoint, streamMode: ["values"] });
  };
  return (
    <div className="msg ai" data-id={message.id}>
      <span className="text">{text}</span>
      <button className="regenerate" disabled={stream.isLoading} onClick={regenerate}>
        Regenerate
      </button>
    </div>
  );
}

function Chat() {
  const [threadId, setThreadId] = useThreadIdInUrl();
  const [input, setInput] = useState("");
  const stream = useStream({
    apiUrl,
    apiKey,
    assistantId,
    threadId,
    onThreadId: setThreadId,
    reconnectOnMount: true,
    fetchStateHistory: true,
    messagesKey: "messages",
  });

  const send = (e) => {
    e.preventDefault();
    const content = input.trim();
    if (!content) return;
    setInput("");
    const message = { type: "human", content };
    stream.submit(
      { messages: [message] },
      {
        streamMode: ["values"],
        optimisticValues: (prev) => ({ ...prev, messages: [...(prev.messages ?? []), message] }),
      },
    );
  };

  return (
    <main>
      <div id="status">{stream.isLoading ? "streaming" : stream.isThreadLoading ? "loading" : "ready"}</div>
      {stream.error ? <div id="error">{String(stream.error?.message ?? stream.error)}</div> : null}
      <div id="messages">
        {stream.messages.map((message, index) => {
          const key = message.id ?? `m-${index}`;
          if (message.type === "human") return <HumanMessage key={key} stream={stream} message={message} />;
          if (message.type === "ai") return <AiMessage key={key} stream={stream} message={message} />;
          return (
            <div key={key} className="msg tool">
              {message.name}: {textOf(message.content)}
            </div>
          );
        })}
      </div>
      <form id="composer" onSubmit={send}>
        <input id="message" value={input} onChange={(e) => setInput(e.target.value)} />
        <button id="send" type="submit" disabled={stream.isLoading}>
          Send
        </button>
        <button id="stop" type="button" disabled={!stream.isLoading} onClick={() => stream.stop()}>
          Stop
        </button>
      </form>
    </main>
  );
}

createRoot(document.getElementById("root")).render(<Chat />);
