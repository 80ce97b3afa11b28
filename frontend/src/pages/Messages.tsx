import { memo, useEffect, useMemo, useRef, useState, type MouseEvent } from "react";
import { errorMessage, request } from "../api/client";
import {
  DocumentLinkDocument,
  SetMessageFeedbackDocument,
  StopGenerationDocument,
  type FeedbackValue,
  type MessageFieldsFragment,
  type SourceFieldsFragment,
} from "../gql/graphql";
import { citedIndexes, locationText, pdfPage, sourceLink } from "../lib/citations";
import { renderMarkdown } from "../lib/markdown";
import { useMessageStream } from "./chat-stream";

export function UserMessage({ message }: { message: MessageFieldsFragment }) {
  return (
    <article className="message user" aria-label="Your question">
      <p className="user-text">{message.content}</p>
    </article>
  );
}

const Markdown = memo(function Markdown({ text, numbers, onCite }: { text: string; numbers: ReadonlySet<number>; onCite: (n: number) => void }) {
  const html = useMemo(() => renderMarkdown(text, numbers), [text, numbers]);
  const click = (event: MouseEvent<HTMLDivElement>) => {
    const chip = (event.target as HTMLElement).closest<HTMLElement>("[data-cite]");
    if (chip) onCite(Number(chip.dataset.cite));
  };
  return <div className="markdown" onClick={click} dangerouslySetInnerHTML={{ __html: html }} />;
});

const Thumb = ({ down }: { down?: boolean }) => (
  <svg width="16" height="16" viewBox="0 0 24 24" aria-hidden="true" style={down ? { transform: "rotate(180deg)" } : undefined}>
    <path fill="currentColor" d="M2 21h4V9H2v12zm20-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L13.17 1 6.59 7.59C6.22 7.95 6 8.45 6 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z" />
  </svg>
);

export function AssistantMessage({
  message,
  isLast,
  canRegenerate = true,
  onUpdate,
  onRegenerate,
}: {
  message: MessageFieldsFragment;
  isLast: boolean;
  /** False in an ended chat: the server refuses to regenerate there until it is continued. */
  canRegenerate?: boolean;
  onUpdate: (id: string, patch: Partial<MessageFieldsFragment>) => void;
  onRegenerate: (id: string) => void;
}) {
  const live = message.status === "PENDING" || message.status === "STREAMING";
  const stream = useMessageStream(message.id, live, message.content);
  const [openSource, setOpenSource] = useState<number | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);

  // When the stream ends, the final state becomes the message's own.
  useEffect(() => {
    if (!live || stream.status === "streaming") return;
    onUpdate(message.id, {
      status: (stream.finalStatus as MessageFieldsFragment["status"]) ?? (stream.status === "done" ? "COMPLETE" : "FAILED"),
      content: stream.text,
      sources: stream.sources.length ? stream.sources : message.sources,
      error: stream.error,
      truncated: stream.truncated,
    });
  }, [live, stream.status, stream.finalStatus, stream.text, stream.sources, stream.error, stream.truncated, message.id, message.sources, onUpdate]);

  const text = live ? stream.text : message.content;
  const sources = live && stream.sources.length ? stream.sources : message.sources;
  const numbers = useMemo(() => new Set(sources.map((source) => source.number)), [sources]);
  // A source streamed in before the answer was written says cited: false; the final text's
  // markers (only those of real sources remain) say which ones the answer cites.
  const cited = useMemo(
    () => new Set([...sources.filter((item) => item.cited).map((item) => item.number), ...citedIndexes(text ?? "").filter((n) => numbers.has(n))]),
    [sources, text, numbers],
  );
  const source = sources.find((item) => item.number === openSource) ?? null;

  const stop = async () => {
    try {
      await request(StopGenerationDocument, { messageId: message.id });
    } catch (caught) {
      setActionError(errorMessage(caught));
    }
  };
  const feedback = async (value: FeedbackValue) => {
    const next = message.feedback === value ? "NONE" : value;
    onUpdate(message.id, { feedback: next });
    try {
      const { setMessageFeedback: result } = await request(SetMessageFeedbackDocument, { messageId: message.id, value: next });
      if (result.__typename !== "ChatMessage") setActionError(result.message);
    } catch (caught) {
      onUpdate(message.id, { feedback: message.feedback });
      setActionError(errorMessage(caught));
    }
  };

  return (
    <article className="message assistant" aria-label="Answer" data-status={live ? "STREAMING" : message.status}>
      {text ? (
        <Markdown text={text} numbers={numbers} onCite={setOpenSource} />
      ) : live ? (
        <p className="muted typing" role="status">
          {stream.sources.length ? "Writing the answer…" : "Searching the documents…"}
        </p>
      ) : null}
      {live && text && <span className="cursor" aria-hidden="true" />}
      {message.status === "STOPPED" && <p className="badge warn">Stopped</p>}
      {!live && message.truncated && (
        <p className="badge warn" role="note" title="The model reached its output token limit (the model's max output tokens).">
          Cut off: the answer reached the model's output limit
        </p>
      )}
      {(message.status === "FAILED" || (live && stream.status === "error")) && (
        <p className="alert error" role="alert">
          {stream.error ?? message.error ?? "The answer failed."}
        </p>
      )}
      {sources.length > 0 && (
        <details className="sources">
          <summary>
            Sources ({sources.length}
            {!live && cited.size === 0 ? ", none cited" : ""})
          </summary>
          {!live && cited.size === 0 && (
            <p className="muted sources-note">The answer cites none of these passages; it was given all of them.</p>
          )}
          <ol>
            {sources.map((item) => (
              <li key={item.number} value={item.number} className={cited.has(item.number) ? "cited" : undefined}>
                <button type="button" className="link source-label" onClick={() => setOpenSource(item.number)}>
                  <span className="source-title">{item.documentTitle}</span>
                  {locationText(item) && <span className="source-location"> — {locationText(item)}</span>}
                  {cited.has(item.number) && <span className="badge ok source-cited">cited</span>}
                </button>
                {item.preview && <span className="source-preview muted">{item.preview}</span>}
              </li>
            ))}
          </ol>
        </details>
      )}
      {source && <SourceDialog source={source} onClose={() => setOpenSource(null)} />}
      <div className="message-actions">
        {live ? (
          <button type="button" className="small" onClick={stop}>
            ■ Stop
          </button>
        ) : (
          <>
            <button
              type="button"
              className="small ghost"
              aria-pressed={message.feedback === "UP"}
              aria-label="Good answer"
              onClick={() => feedback("UP")}
            >
              <Thumb />
            </button>
            <button
              type="button"
              className="small ghost"
              aria-pressed={message.feedback === "DOWN"}
              aria-label="Bad answer"
              onClick={() => feedback("DOWN")}
            >
              <Thumb down />
            </button>
            {isLast && canRegenerate && (
              <button type="button" className="small ghost" onClick={() => onRegenerate(message.id)}>
                ↻ Regenerate
              </button>
            )}
          </>
        )}
      </div>
      {actionError && <p className="field-error">{actionError}</p>}
    </article>
  );
}

function SourceDialog({ source, onClose }: { source: SourceFieldsFragment; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, [source.number]);
  // Browsers open links without our bearer token, so the original is opened through the
  // document's signed, short-lived downloadUrl, with the source's #page=N anchor.
  const [link, setLink] = useState<string | null>(null);
  useEffect(() => {
    if (!source.url) return;
    let cancelled = false;
    request(DocumentLinkDocument, { id: source.documentId })
      .then(({ document }) => {
        if (!cancelled && document?.downloadUrl) setLink(sourceLink(document.downloadUrl, pdfPage(source)));
      })
      .catch(() => undefined);
    return () => {
      cancelled = true;
    };
  }, [source.url, source.documentId, source.pageStart, source.location?.kind, source.location?.page]);
  return (
    <dialog ref={ref} className="source-dialog" aria-labelledby="source-title" onClose={onClose} onCancel={onClose}>
      <h2 id="source-title">
        [{source.number}] {source.documentTitle}
      </h2>
      <p className="muted source-location">{locationText(source)}</p>
      {source.location?.ocr && (
        <p className="muted source-ocr">Read from an image of the page by OCR: some words may be misread.</p>
      )}
      {source.table && source.table.rows.length > 0 ? (
        <div className="source-table-wrap">
          <table className="source-table" aria-label={`Rows of ${source.documentTitle}`}>
            <thead>
              <tr>
                <th scope="col">{source.location?.kind === "SHEET" ? "Row" : "Data row"}</th>
                {source.table.columns.map((column, index) => (
                  <th scope="col" key={index}>
                    {column}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {source.table.rows.map((row, rowIndex) => (
                <tr key={rowIndex}>
                  <th scope="row">{row.dataRow ?? "?"}</th>
                  {row.cells.map((cell, cellIndex) => (
                    <td key={cellIndex}>{cell}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <blockquote className="snippet">{source.snippet}</blockquote>
      )}
      <div className="actions">
        {link && (
          <a className="button-link" href={link} target="_blank" rel="noopener noreferrer">
            Open the original{source.pageStart ? ` at page ${source.pageStart}` : ""}
          </a>
        )}
        <button type="button" onClick={onClose} autoFocus>
          Close
        </button>
      </div>
    </dialog>
  );
}
