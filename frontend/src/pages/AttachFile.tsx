import { useEffect, useReducer, useRef, useState } from "react";
import { errorMessage } from "../api/client";
import { uploadFile } from "../api/upload";
import { subscribe } from "../api/ws";
import { ProgressBar } from "../components/ui";
import { AttachFileDocument, DocumentProgressDocument, type DocumentStatus } from "../gql/graphql";
import { ingestionLine } from "../lib/ingestion";
import { ACCEPTED_FILE_TYPES, ACCEPTED_KINDS, uploadPercent, uploadsReducer } from "../lib/uploads";

interface Ingestion {
  documentId: string;
  status: DocumentStatus;
  percent: number;
  error: string | null;
  // Its place in the queue while QUEUED, and the server's ETA while it is worked on (issue 16).
  documentsAhead?: number | null;
  etaSeconds?: number | null;
}

/** Attach a file to the chat: upload progress, then ingestion progress until it is searchable. */
export function AttachFile({ sessionId, onChanged }: { sessionId: string; onChanged?: () => void }) {
  const input = useRef<HTMLInputElement>(null);
  const [uploads, dispatch] = useReducer(uploadsReducer, []);
  const [ingestions, setIngestions] = useState<Record<string, Ingestion & { name: string }>>({});

  const attach = (file: File) => {
    const key = `${file.name}-${Date.now()}`;
    dispatch({ type: "start", key, name: file.name, size: file.size });
    uploadFile(AttachFileDocument, { sessionId, file: null as unknown as File }, "file", file, (loaded, total) =>
      dispatch({ type: "progress", key, loaded, total }),
    )
      .promise.then(({ attachFile: result }) => {
        if (result.__typename === "DocumentUploaded") {
          dispatch({ type: "dismiss", key });
          const { id, status } = result.document;
          setIngestions((current) => ({ ...current, [id]: { documentId: id, name: file.name, status, percent: 0, error: null } }));
          onChanged?.(); // the conversation lists the chat's attachments
        } else dispatch({ type: "error", key, message: result.message });
      })
      .catch((caught) => dispatch({ type: "error", key, message: errorMessage(caught) }));
  };

  return (
    <div className="attach">
      <button type="button" className="ghost" onClick={() => input.current?.click()} aria-label="Attach a file to this chat" title="Attach a file">
        <svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true">
          <path fill="currentColor" d="M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6h-1.5z" />
        </svg>
      </button>
      <input
        ref={input}
        type="file"
        className="visually-hidden"
        tabIndex={-1}
        aria-hidden="true"
        accept={ACCEPTED_FILE_TYPES}
        title={`Accepted: ${ACCEPTED_KINDS}`}
        onChange={(event) => {
          const file = event.target.files?.[0];
          if (file) attach(file);
          event.target.value = "";
        }}
      />
      {(uploads.length > 0 || Object.keys(ingestions).length > 0) && (
        <div className="attach-status" role="status">
          {uploads.map((item) => (
            <div key={item.key}>
              <span>{item.name}: {item.phase === "error" ? item.message : `uploading ${uploadPercent(item)}%`}</span>
              <ProgressBar value={uploadPercent(item)} label={`Upload of ${item.name}`} tone={item.phase === "error" ? "error" : undefined} />
              {item.phase === "error" && <button type="button" className="small" onClick={() => dispatch({ type: "dismiss", key: item.key })}>Dismiss</button>}
            </div>
          ))}
          {Object.values(ingestions).map((item) => (
            <AttachedIngestion
              key={item.documentId}
              item={item}
              onUpdate={(next) => {
                setIngestions((current) => ({ ...current, [item.documentId]: { ...item, ...next } }));
                if (next.status === "READY" || next.status === "FAILED") onChanged?.();
              }}
            />
          ))}
        </div>
      )}
    </div>
  );
}

function AttachedIngestion({ item, onUpdate }: { item: Ingestion & { name: string }; onUpdate: (next: Partial<Ingestion>) => void }) {
  const final = item.status === "READY" || item.status === "FAILED";
  useEffect(() => {
    if (final) return;
    return subscribe(DocumentProgressDocument, { documentId: item.documentId }, {
      next: ({ documentProgress: event }) =>
        onUpdate({ status: event.status, percent: event.percent, error: event.error, documentsAhead: event.documentsAhead, etaSeconds: event.etaSeconds }),
      error: (message) => onUpdate({ error: message }),
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [item.documentId, final]);
  const label = item.status === "READY" ? "ready — used for your next questions" : item.status === "FAILED" ? item.error ?? "failed" : ingestionLine(item);
  return (
    <div>
      <span>{item.name}: {label}</span>
      <ProgressBar value={item.status === "READY" ? 100 : item.percent} label={`Processing of ${item.name}`} tone={item.status === "READY" ? "ok" : item.status === "FAILED" ? "error" : undefined} />
    </div>
  );
}
