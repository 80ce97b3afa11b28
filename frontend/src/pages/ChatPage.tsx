import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { errorMessage, request } from "../api/client";
import { Alert, Loading, resultMessage } from "../components/ui";
import {
  ChatSessionsDocument,
  DeleteChatSessionDocument,
  RegenerateMessageDocument,
  RenameChatSessionDocument,
  ResumeChatSessionDocument,
  SendMessageDocument,
  SessionMessagesDocument,
  StartChatSessionDocument,
  type MessageFieldsFragment,
  type SendResultFieldsFragment,
  type SessionFieldsFragment,
} from "../gql/graphql";
import { isAdmin, useAuth } from "../auth";
import { useAsync } from "../hooks";
import { conversationTimeline, type SessionAttachment } from "../lib/timeline";
import { linkHandler, matchPath, navigate } from "../router";
import { AttachFile } from "./AttachFile";
import { useVisibleModels } from "./visibleModels";
import { AssistantMessage, UserMessage } from "./Messages";

const MODEL_KEY = "ragql.model";

export function ChatPage({ path }: { path: string }) {
  const sessionId = matchPath("/chat/:id", path)?.id ?? null;
  const models = useVisibleModels();
  const sessions = useAsync(() => request(ChatSessionsDocument).then((data) => data.chatSessions.items), []);
  const [modelId, setModelId] = useState<string>(() => localStorage.getItem(MODEL_KEY) ?? "");
  const [sidebarOpen, setSidebarOpen] = useState(false);
  const session = sessions.data?.find((item) => item.id === sessionId) ?? null;

  // The model follows the open session; otherwise the last one picked, if still allowed.
  useEffect(() => {
    if (session && session.modelId !== modelId) setModelId(session.modelId);
    else if (models.data && !models.data.some((model) => model.id === modelId)) setModelId(models.data[0]?.id ?? "");
  }, [session, models.data, modelId]);
  useEffect(() => {
    if (modelId) localStorage.setItem(MODEL_KEY, modelId);
  }, [modelId]);

  const model = models.data?.find((item) => item.id === modelId) ?? null;
  const modelNames = useMemo(() => new Map(models.data?.map((item) => [item.id, item.name])), [models.data]);

  const newChat = () => {
    setSidebarOpen(false);
    navigate("/");
  };

  return (
    <div className="chat-layout">
      <aside className={`sidebar ${sidebarOpen ? "open" : ""}`} aria-label="Chats">
        <label>
          Model
          <select
            name="model"
            value={modelId}
            onChange={(event) => {
              setModelId(event.target.value);
              navigate("/");
            }}
            disabled={!models.data?.length}
          >
            {models.data?.length === 0 && <option value="">No models available</option>}
            {models.data?.map((item) => (
              <option key={item.id} value={item.id}>
                {item.name}
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="primary" onClick={newChat} disabled={!model}>
          New chat
        </button>
        <h2 className="sidebar-title">History</h2>
        <Alert>{sessions.error}</Alert>
        {sessions.data?.length === 0 && <p className="muted">No chats yet.</p>}
        <ul className="session-list">
          {sessions.data?.map((item) => (
            <SessionItem
              key={item.id}
              session={item}
              modelName={modelNames.get(item.modelId)}
              current={item.id === sessionId}
              onChanged={sessions.reload}
              onOpen={() => setSidebarOpen(false)}
            />
          ))}
        </ul>
      </aside>
      <main className="conversation" id="main">
        <button type="button" className="ghost sidebar-toggle" aria-expanded={sidebarOpen} onClick={() => setSidebarOpen(!sidebarOpen)}>
          ☰ Chats
        </button>
        <Alert>{models.error}</Alert>
        {models.loading && !models.data ? (
          <Loading what="models" />
        ) : models.data?.length === 0 ? (
          <NoModels />
        ) : (
          <Conversation
            key={sessionId ?? `new-${modelId}`}
            session={session}
            sessionId={sessionId}
            modelId={modelId}
            modelName={model?.name ?? ""}
            documentCount={model?.documentCount ?? 0}
            onSessionsChanged={sessions.reload}
          />
        )}
      </main>
    </div>
  );
}

/** Nothing to chat with: an administrator is shown where models are made; a user, whom to ask. */
function NoModels() {
  const { user } = useAuth();
  if (isAdmin(user)) {
    return (
      <div className="empty">
        <h1>No models yet</h1>
        <p>
          A model is a collection of documents plus the answerer that reads them.{" "}
          <a href="/admin/models" onClick={linkHandler("/admin/models")}>
            Create the first one
          </a>{" "}
          (under Admin), upload documents to it, then grant it to users or groups.
        </p>
      </div>
    );
  }
  return (
    <div className="empty">
      <h1>No models yet</h1>
      <p>
        You have not been given access to any model. Ask an administrator to grant you one; it appears here as soon as
        they do.
      </p>
    </div>
  );
}

function SessionItem({
  session,
  modelName,
  current,
  onChanged,
  onOpen,
}: {
  session: SessionFieldsFragment;
  modelName?: string;
  current: boolean;
  onChanged: () => Promise<void>;
  onOpen: () => void;
}) {
  const [editing, setEditing] = useState(false);
  const [title, setTitle] = useState(session.title);
  const [error, setError] = useState<string | null>(null);
  const href = `/chat/${session.id}`;
  const rename = async (event: FormEvent) => {
    event.preventDefault();
    setEditing(false);
    try {
      const { renameChatSession: result } = await request(RenameChatSessionDocument, { id: session.id, title });
      if (result.__typename !== "ChatSession") setError(resultMessage(result));
      await onChanged();
    } catch (caught) {
      setError(errorMessage(caught));
    }
  };
  const remove = async () => {
    if (!window.confirm(`Delete the chat “${session.title}” and its attached files?`)) return;
    try {
      const { deleteChatSession: result } = await request(DeleteChatSessionDocument, { id: session.id });
      if (result.__typename === "NotFound") setError(result.message);
      if (current) navigate("/");
      await onChanged();
    } catch (caught) {
      setError(errorMessage(caught));
    }
  };
  return (
    <li className={current ? "current" : ""}>
      {editing ? (
        <form onSubmit={rename} className="session-rename">
          <label className="visually-hidden" htmlFor={`rename-${session.id}`}>
            Chat title
          </label>
          <input id={`rename-${session.id}`} value={title} onChange={(event) => setTitle(event.target.value)} autoFocus onBlur={() => setEditing(false)} />
        </form>
      ) : (
        <a
          href={href}
          aria-current={current ? "page" : undefined}
          onClick={(event) => {
            onOpen();
            linkHandler(href)(event);
          }}
        >
          <span className="session-title">{session.title}</span>
          <span className="muted session-meta">
            {modelName ?? "model removed"}
            {session.isActive ? "" : " · ended"}
          </span>
        </a>
      )}
      <div className="session-actions">
        <button type="button" className="small ghost" aria-label={`Rename ${session.title}`} onClick={() => setEditing(true)}>
          ✎
        </button>
        <button type="button" className="small ghost" aria-label={`Delete ${session.title}`} onClick={remove}>
          ✕
        </button>
      </div>
      {error && <span className="field-error">{error}</span>}
    </li>
  );
}

function Conversation({
  session,
  sessionId,
  modelId,
  modelName,
  documentCount,
  onSessionsChanged,
}: {
  session: SessionFieldsFragment | null;
  sessionId: string | null;
  modelId: string;
  modelName: string;
  documentCount: number;
  onSessionsChanged: () => Promise<void>;
}) {
  const [messages, setMessages] = useState<MessageFieldsFragment[]>([]);
  const [loading, setLoading] = useState(!!sessionId);
  const [error, setError] = useState<string | null>(null);
  const [draft, setDraft] = useState("");
  const [sending, setSending] = useState(false);
  const endRef = useRef<HTMLDivElement>(null);
  const pendingQuestion = useRef<string | null>(null);

  const applySend = useCallback((result: SendResultFieldsFragment, replaceId?: string) => {
    if (result.__typename === "MessageSent") {
      setMessages((current) => {
        const kept = current.filter((message) => message.id !== replaceId);
        const added = [result.userMessage, result.assistantMessage].filter(
          (message): message is MessageFieldsFragment => !!message && !kept.some((existing) => existing.id === message.id),
        );
        return [...kept, ...added];
      });
      return true;
    }
    setError(resultMessage(result));
    return false;
  }, []);

  const send = useCallback(
    async (content: string, id: string) => {
      setSending(true);
      setError(null);
      try {
        const { sendMessage: result } = await request(SendMessageDocument, { sessionId: id, content });
        if (applySend(result)) setDraft("");
        void onSessionsChanged();
      } catch (caught) {
        setError(errorMessage(caught));
      } finally {
        setSending(false);
      }
    },
    [applySend, onSessionsChanged],
  );

  useEffect(() => {
    if (!sessionId) return;
    let cancelled = false;
    request(SessionMessagesDocument, { sessionId })
      .then(({ messages: result }) => {
        if (cancelled) return;
        if (result.__typename === "ChatMessagePage") setMessages(result.items);
        else setError(result.message);
      })
      .catch((caught) => !cancelled && setError(errorMessage(caught)))
      .finally(() => {
        if (cancelled) return;
        setLoading(false);
        // A question typed before the session existed is sent once it does.
        const question = pendingQuestion.current ?? sessionStorage.getItem("ragql.pending");
        sessionStorage.removeItem("ragql.pending");
        pendingQuestion.current = null;
        if (question) void send(question, sessionId);
      });
    return () => {
      cancelled = true;
    };
  }, [sessionId, send]);

  useEffect(() => {
    endRef.current?.scrollIntoView({ block: "end" });
  }, [messages.length]);

  const submit = async (event?: FormEvent) => {
    event?.preventDefault();
    const content = draft.trim();
    if (!content || sending) return;
    if (sessionId) {
      await send(content, sessionId);
      return;
    }
    setSending(true);
    setError(null);
    try {
      const title = content.length > 60 ? `${content.slice(0, 57)}…` : content;
      const { startChatSession: result } = await request(StartChatSessionDocument, { modelId, title });
      if (result.__typename !== "ChatSession") {
        setError(resultMessage(result));
        return;
      }
      sessionStorage.setItem("ragql.pending", content);
      await onSessionsChanged();
      navigate(`/chat/${result.id}`);
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setSending(false);
    }
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      void submit();
    }
  };

  const updateMessage = useCallback((id: string, patch: Partial<MessageFieldsFragment>) => {
    setMessages((current) => current.map((message) => (message.id === id ? { ...message, ...patch } : message)));
  }, []);

  const regenerate = async (messageId: string) => {
    setError(null);
    try {
      const { regenerateMessage: result } = await request(RegenerateMessageDocument, { messageId });
      applySend(result, messageId);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  };

  // An ended chat (a newer one with this model was started) is read-only until continued:
  // the server refuses Regenerate and attachments there, so they are not offered.
  const ended = session?.isActive === false;
  const [resuming, setResuming] = useState(false);
  const resume = async () => {
    if (!sessionId) return;
    setResuming(true);
    setError(null);
    try {
      const { resumeChatSession: result } = await request(ResumeChatSessionDocument, { id: sessionId });
      if (result.__typename !== "ChatSession") setError(result.message);
      await onSessionsChanged();
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setResuming(false);
    }
  };
  const timeline = useMemo(() => conversationTimeline(messages, session?.attachments ?? []), [messages, session?.attachments]);

  const lastAssistant = [...messages].reverse().find((message) => message.role === "ASSISTANT");
  const generating = messages.some((message) => message.role === "ASSISTANT" && (message.status === "PENDING" || message.status === "STREAMING"));
  return (
    <div className="conversation-inner">
      <header className="conversation-header">
        <h1>{session?.title ?? (sessionId ? "Chat" : `New chat with ${modelName}`)}</h1>
        {session && !session.isActive && <span className="badge">ended</span>}
      </header>
      <div className="messages" aria-live="polite" aria-busy={generating}>
        {loading && <Loading what="messages" />}
        {!loading && messages.length === 0 && (
          <div className="empty">
            <p>
              Ask a question about the documents in <strong>{modelName}</strong>.
            </p>
            {documentCount === 0 && <p>This model has no documents yet, so answers will have no sources.</p>}
          </div>
        )}
        {timeline.map((item) =>
          item.kind === "attachment" ? (
            <AttachmentNote key={item.attachment.id} attachment={item.attachment} />
          ) : item.message.role === "USER" ? (
            <UserMessage key={item.message.id} message={item.message} />
          ) : (
            <AssistantMessage
              key={item.message.id}
              message={item.message}
              isLast={item.message.id === lastAssistant?.id}
              canRegenerate={!ended}
              onUpdate={updateMessage}
              onRegenerate={regenerate}
            />
          ),
        )}
        <div ref={endRef} />
      </div>
      <Alert>{error}</Alert>
      {ended ? (
        <div className="resume-bar" role="region" aria-label="Ended chat">
          <p>This chat ended when you started a newer one with {modelName || "this model"}. Its history is kept.</p>
          <button type="button" className="primary" onClick={resume} disabled={resuming}>
            {resuming ? "Continuing…" : "Continue this chat"}
          </button>
        </div>
      ) : (
        <form className="composer" onSubmit={submit}>
          <label className="visually-hidden" htmlFor="question">
            Your question
          </label>
          <textarea
            id="question"
            name="question"
            rows={2}
            placeholder={`Ask ${modelName || "a question"}…`}
            title="Enter to send, Shift+Enter for a new line"
            aria-describedby="composer-hint"
            value={draft}
            onChange={(event) => setDraft(event.target.value)}
            onKeyDown={onKeyDown}
            maxLength={20000}
          />
          <div className="composer-actions">
            {sessionId && <AttachFile sessionId={sessionId} onChanged={onSessionsChanged} />}
            <button type="submit" className="primary" disabled={!draft.trim() || sending || generating || !modelId}>
              {sending ? "Sending…" : "Send"}
            </button>
          </div>
          <span id="composer-hint" className="composer-hint muted">Enter to send, Shift+Enter for a new line</span>
        </form>
      )}
    </div>
  );
}

function AttachmentNote({ attachment }: { attachment: SessionAttachment }) {
  const state = attachment.status === "READY" ? "ready" : attachment.status === "FAILED" ? "could not be read" : "being processed";
  return (
    <p className="attachment-note" data-attachment={attachment.filename} data-status={attachment.status}>
      <svg width="14" height="14" viewBox="0 0 24 24" aria-hidden="true">
        <path fill="currentColor" d="M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6h-1.5z" />
      </svg>{" "}
      Attached to this chat: <strong>{attachment.filename}</strong> <span className="muted">— {state}</span>
    </p>
  );
}
