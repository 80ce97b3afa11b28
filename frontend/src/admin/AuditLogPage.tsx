import { useState } from "react";
import { request } from "../api/client";
import { Alert, formatDate, Loading } from "../components/ui";
import { AuditLogDocument } from "../gql/graphql";
import { useAsync, useDebounced } from "../hooks";
import { auditDetails, auditTarget } from "../lib/audit";

const PAGE = 50;

export function AuditLogPage() {
  const [action, setAction] = useState("");
  const [page, setPage] = useState(0);
  const debounced = useDebounced(action);
  const log = useAsync(
    () => request(AuditLogDocument, { first: PAGE, offset: page * PAGE, action: debounced || null }).then((data) => data.auditLog),
    [debounced, page],
  );
  return (
    <section aria-labelledby="audit-title" className="stack">
      <h1 id="audit-title">Audit log</h1>
      <label>
        Filter by action
        <input type="search" value={action} placeholder="e.g. model.create" onChange={(event) => { setAction(event.target.value); setPage(0); }} />
      </label>
      <Alert>{log.error}</Alert>
      {log.loading && !log.data && <Loading what="the audit log" />}
      {log.data?.items.length === 0 && <p className="empty">No entries.</p>}
      {log.data && log.data.items.length > 0 && (
        <div className="table-wrap">
          <table className="stacked" aria-label="Audit log">
            <thead>
              <tr><th>When</th><th>Who</th><th>Action</th><th>Target</th><th>Details</th></tr>
            </thead>
            <tbody>
              {log.data.items.map((entry) => (
                <tr key={entry.id}>
                  <td data-label="When">{formatDate(entry.createdAt)}</td>
                  <td data-label="Who">{entry.actorEmail ?? "system"}</td>
                  <td data-label="Action"><code>{entry.action}</code></td>
                  <td data-label="Target">{auditTarget(entry)}</td>
                  <td data-label="Details">{auditDetails(entry)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <div className="actions">
        <button type="button" disabled={page === 0} onClick={() => setPage(page - 1)}>Newer</button>
        <button type="button" disabled={!log.data?.hasNextPage} onClick={() => setPage(page + 1)}>Older</button>
      </div>
    </section>
  );
}
