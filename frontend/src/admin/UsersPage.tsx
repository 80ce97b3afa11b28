import { useState } from "react";
import { errorMessage, request } from "../api/client";
import { useAuth } from "../auth";
import { Alert, formatDate, Loading, resultMessage } from "../components/ui";
import {
  AdminUsersDocument,
  DeactivateUserDocument,
  DemoteUserDocument,
  PromoteUserDocument,
  ReactivateUserDocument,
  type UserFieldsFragment,
} from "../gql/graphql";
import { useAsync, useDebounced } from "../hooks";

const PAGE = 25;

export function UsersPage() {
  const { user: me } = useAuth();
  const [search, setSearch] = useState("");
  const [page, setPage] = useState(0);
  const debounced = useDebounced(search);
  const users = useAsync(
    () => request(AdminUsersDocument, { search: debounced || null, first: PAGE, offset: page * PAGE }).then((data) => data.users),
    [debounced, page],
  );
  const [message, setMessage] = useState<{ tone: "ok" | "error"; text: string } | null>(null);

  const act = async (label: string, run: () => Promise<{ __typename: string; message?: string; email?: string }>) => {
    setMessage(null);
    try {
      const result = await run();
      if (result.__typename === "User") setMessage({ tone: "ok", text: `${label}: ${result.email}` });
      else setMessage({ tone: "error", text: resultMessage(result) });
      await users.reload();
    } catch (caught) {
      setMessage({ tone: "error", text: errorMessage(caught) });
    }
  };

  const actions = (user: UserFieldsFragment) => {
    if (user.role === "SUPERADMIN" || user.id === me?.id) return <span className="muted">—</span>;
    return (
      <div className="actions">
        {user.role === "USER" ? (
          <button type="button" className="small" onClick={() => act("Promoted", () => request(PromoteUserDocument, { userId: user.id }).then((d) => d.promoteUser))}>
            Promote to admin
          </button>
        ) : (
          <button type="button" className="small" onClick={() => act("Demoted", () => request(DemoteUserDocument, { userId: user.id }).then((d) => d.demoteUser))}>
            Demote
          </button>
        )}
        {user.isActive ? (
          <button type="button" className="small danger" onClick={() => act("Deactivated", () => request(DeactivateUserDocument, { userId: user.id }).then((d) => d.deactivateUser))}>
            Deactivate
          </button>
        ) : (
          <button type="button" className="small" onClick={() => act("Reactivated", () => request(ReactivateUserDocument, { userId: user.id }).then((d) => d.reactivateUser))}>
            Reactivate
          </button>
        )}
      </div>
    );
  };

  const total = users.data?.totalCount ?? 0;
  return (
    <section aria-labelledby="users-title" className="stack">
      <h1 id="users-title">Users</h1>
      <label>
        Search users
        <input type="search" value={search} placeholder="Email or name" onChange={(event) => { setSearch(event.target.value); setPage(0); }} />
      </label>
      {message && <Alert tone={message.tone}>{message.text}</Alert>}
      <Alert>{users.error}</Alert>
      {users.loading && !users.data && <Loading what="users" />}
      {users.data && users.data.items.length === 0 && <p className="empty">No users match “{debounced}”.</p>}
      {users.data && users.data.items.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr><th>Email</th><th>Name</th><th>Role</th><th>Status</th><th>Last login</th><th>Actions</th></tr>
            </thead>
            <tbody>
              {users.data.items.map((user) => (
                <tr key={user.id}>
                  <td>{user.email}</td>
                  <td>{user.displayName}</td>
                  <td><span className="badge">{user.role.toLowerCase()}</span></td>
                  <td>{user.isActive ? <span className="badge ok">active</span> : <span className="badge error">deactivated</span>}</td>
                  <td>{formatDate(user.lastLoginAt)}</td>
                  <td>{actions(user)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {total > PAGE && (
        <div className="actions" aria-label="Pages">
          <button type="button" disabled={page === 0} onClick={() => setPage(page - 1)}>Previous</button>
          <span className="muted">Page {page + 1} of {Math.ceil(total / PAGE)}</span>
          <button type="button" disabled={!users.data?.hasNextPage} onClick={() => setPage(page + 1)}>Next</button>
        </div>
      )}
    </section>
  );
}
