import { useCallback, useEffect, useReducer, useRef, useState, type DragEvent } from "react";
import { errorMessage, request } from "../api/client";
import { uploadFile } from "../api/upload";
import { subscribe } from "../api/ws";
import { Alert, formatDate, Loading, ProgressBar } from "../components/ui";
import {
  DeleteDocumentDocument,
  DocumentEventsDocument,
  ModelDocumentsDocument,
  ReindexDocumentDocument,
  UploadDocumentDocument,
  type DocumentEventsSubscription,
  type DocumentFieldsFragment,
  type ModelDocumentsQuery,
} from "../gql/graphql";
import { ingestionLine, passagesLabel } from "../lib/ingestion";
import { ACCEPTED_FILE_TYPES, ACCEPTED_KINDS, formatBytes, uploadPercent, uploadsReducer } from "../lib/uploads";
import { linkHandler } from "../router";

type Progress = DocumentEventsSubscription["documentEvents"];
const WORKING = new Set(["QUEUED", "PARSING", "CHUNKING", "EMBEDDING", "STORING"]);

function statusTone(status: string): "ok" | "error" | "warn" {
  if (status === "READY") return "ok";
  if (status === "FAILED") return "error";
  return "warn";
}

export function DocumentsPage({ modelId }: { modelId: string }) {
  const [documents, setDocuments] = useState<DocumentFieldsFragment[] | null>(null);
  const [modelName, setModelName] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<{ tone: "ok" | "error"; text: string } | null>(null);
  const [progress, setProgress] = useState<Record<string, Progress>>({});
  const [uploads, dispatch] = useReducer(uploadsReducer, []);
  const [dragging, setDragging] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);

  const load = useCallback(async () => {
    try {
      // Every list answers pages of at most 100 (kit/pagination.py): follow endCursor to the end.
      const all: DocumentFieldsFragment[] = [];
      let after: string | null = null;
      for (;;) {
        const data: ModelDocumentsQuery = await request(ModelDocumentsDocument, { modelId, after });
        setModelName(data.model?.name ?? null);
        if (data.documents.__typename !== "DocumentPage") {
          setError(data.documents.message);
          return;
        }
        all.push(...data.documents.items);
        if (!data.documents.hasNextPage || !data.documents.endCursor) break;
        after = data.documents.endCursor;
      }
      setDocuments(all);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }, [modelId]);

  useEffect(() => {
    void load();
  }, [load]);

  // Live ingestion progress for every document of the model.
  useEffect(() => {
    return subscribe(DocumentEventsDocument, { modelId }, {
      next: ({ documentEvents: event }) => {
        if (event.deleted) {
          setDocuments((current) => current?.filter((document) => document.id !== event.documentId) ?? current);
          return;
        }
        setProgress((current) => ({ ...current, [event.documentId]: event }));
        setDocuments((current) => {
          if (!current) return current;
          if (!current.some((document) => document.id === event.documentId)) {
            void load(); // uploaded elsewhere: fetch its row
            return current;
          }
          return current.map((document) =>
            document.id === event.documentId
              ? {
                  ...document,
                  status: event.status,
                  progress: event.progress,
                  chunkCount: event.chunkCount,
                  chunkCountFinal: event.chunkCountFinal,
                  documentsAhead: event.documentsAhead,
                  pageCount: event.pageCount ?? document.pageCount,
                  error: event.error,
                  warnings: event.warnings,
                }
              : document,
          );
        });
        if (event.status === "READY" || event.status === "FAILED") void load();
      },
      error: (message) => setError(`Live progress is unavailable: ${message}`),
    });
  }, [modelId, load]);

  const upload = (files: FileList | File[]) => {
    for (const file of Array.from(files)) {
      const key = `${file.name}-${file.size}-${file.lastModified}-${Math.random()}`;
      dispatch({ type: "start", key, name: file.name, size: file.size });
      const handle = uploadFile(UploadDocumentDocument, { modelId, file: null as unknown as File }, "file", file, (loaded, total) =>
        dispatch({ type: "progress", key, loaded, total }),
      );
      handle.promise
        .then(({ uploadDocument: result }) => {
          if (result.__typename === "DocumentUploaded") {
            dispatch({ type: "done", key, message: "Stored; ingestion started." });
            setDocuments((current) =>
              current && !current.some((document) => document.id === result.document.id) ? [result.document, ...current] : current,
            );
            setTimeout(() => dispatch({ type: "dismiss", key }), 4000);
          } else {
            dispatch({ type: "error", key, message: result.message });
          }
        })
        .catch((caught) => dispatch({ type: "error", key, message: errorMessage(caught) }));
    }
  };

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    if (event.dataTransfer.files.length) upload(event.dataTransfer.files);
  };

  const remove = async (document: DocumentFieldsFragment) => {
    if (!window.confirm(`Delete “${document.title}” with its passages and file?`)) return;
    try {
      const { deleteDocument: result } = await request(DeleteDocumentDocument, { id: document.id });
      if (result.__typename === "DocumentDeleted") {
        setNotice({ tone: "ok", text: `Deleted “${document.title}”.` });
        setDocuments((current) => current?.filter((item) => item.id !== document.id) ?? current);
      } else setNotice({ tone: "error", text: result.message });
    } catch (caught) {
      setNotice({ tone: "error", text: errorMessage(caught) });
    }
  };

  const reindex = async (document: DocumentFieldsFragment) => {
    try {
      const { reindexDocument: result } = await request(ReindexDocumentDocument, { id: document.id });
      if (result.__typename === "DocumentReindexQueued") {
        setNotice({ tone: "ok", text: `Re-indexing “${document.title}”.` });
        setDocuments((current) => current?.map((item) => (item.id === document.id ? result.document : item)) ?? current);
      } else setNotice({ tone: "error", text: result.message });
    } catch (caught) {
      setNotice({ tone: "error", text: errorMessage(caught) });
    }
  };

  return (
    <section aria-labelledby="documents-title" className="stack">
      <p>
        <a href="/admin/models" onClick={linkHandler("/admin/models")}>← Models</a>
      </p>
      <h1 id="documents-title">Documents{modelName ? ` — ${modelName}` : ""}</h1>
      <div
        className={`dropzone ${dragging ? "dragging" : ""}`}
        onDragOver={(event) => {
          event.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <p>Drop files here: {ACCEPTED_KINDS}; or</p>
        <button type="button" className="primary" onClick={() => fileInput.current?.click()}>
          Choose files…
        </button>
        <input
          ref={fileInput}
          type="file"
          multiple
          accept={ACCEPTED_FILE_TYPES}
          className="visually-hidden"
          aria-label="Upload documents"
          data-testid="document-file-input"
          onChange={(event) => {
            if (event.target.files?.length) upload(event.target.files);
            event.target.value = "";
          }}
        />
      </div>
      {uploads.length > 0 && (
        <ul className="upload-list" aria-label="Uploads">
          {uploads.map((item) => (
            <li key={item.key} className="card" data-upload={item.name}>
              <div className="row" style={{ justifyContent: "space-between", alignItems: "center" }}>
                <strong>{item.name}</strong>
                <span className="muted">
                  {item.phase === "uploading" && `Uploading ${uploadPercent(item)}% of ${formatBytes(item.size)}`}
                  {item.phase === "processing" && "Upload complete; the server is storing the file…"}
                  {item.phase === "done" && item.message}
                </span>
              </div>
              <ProgressBar value={uploadPercent(item)} label={`Upload of ${item.name}`} tone={item.phase === "error" ? "error" : item.phase === "done" ? "ok" : undefined} />
              {item.phase === "error" && (
                <div className="row" style={{ alignItems: "center" }}>
                  <span className="field-error" role="alert" style={{ flex: 1 }}>{item.message}</span>
                  <button type="button" className="small" onClick={() => dispatch({ type: "dismiss", key: item.key })}>Dismiss</button>
                </div>
              )}
            </li>
          ))}
        </ul>
      )}
      {notice && <Alert tone={notice.tone}>{notice.text}</Alert>}
      <Alert>{error}</Alert>
      {!documents && !error && <Loading what="documents" />}
      {documents?.length === 0 && <p className="empty">No documents yet. Upload files above; they become searchable once READY.</p>}
      {documents && documents.length > 0 && (
        <ul className="document-list">
          {documents.map((document) => {
            const live = progress[document.id];
            const working = WORKING.has(document.status);
            const percent = live ? live.percent : Math.round(document.progress * 100);
            return (
              <li key={document.id} className="card document" data-document={document.filename} data-status={document.status}>
                <div className="row" style={{ alignItems: "center", justifyContent: "space-between" }}>
                  <div style={{ minWidth: 0 }}>
                    <strong className="document-title">{document.title}</strong>
                    <div className="muted">
                      {document.kind} · {formatBytes(document.sizeBytes)}
                      {document.pageCount != null && ` · ${document.pageCount} pages`}
                      {document.rowCount != null && ` · ${document.rowCount} rows`}
                      {` · ${passagesLabel(document.chunkCount, document.chunkCountFinal)}`} · added {formatDate(document.createdAt)}
                    </div>
                  </div>
                  <span className={`badge ${statusTone(document.status)}`} data-testid="document-status">
                    {document.status.toLowerCase()}
                  </span>
                </div>
                {(working || document.status === "READY") && (
                  <>
                    <ProgressBar value={document.status === "READY" ? 100 : percent} label={`Ingestion of ${document.title}`} tone={document.status === "READY" ? "ok" : undefined} />
                    {working && (
                      <p className="muted small-text" data-testid="ingestion-line">
                        {ingestionLine({
                          status: document.status,
                          percent,
                          documentsAhead: live ? live.documentsAhead : document.documentsAhead,
                          pagesDone: live?.pagesDone,
                          pageCount: live?.pageCount,
                          etaSeconds: live?.etaSeconds,
                        })}
                      </p>
                    )}
                  </>
                )}
                {document.error && <p className="alert error">{document.error}</p>}
                {document.warnings.map((warning) => (
                  <p key={warning} className="alert warn">{warning}</p>
                ))}
                <div className="actions">
                  {document.downloadUrl && (
                    <a href={document.downloadUrl} target="_blank" rel="noopener noreferrer">Open original</a>
                  )}
                  <button type="button" className="small" onClick={() => reindex(document)} disabled={working}>Re-index</button>
                  <button type="button" className="small danger" onClick={() => remove(document)}>Delete</button>
                </div>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
