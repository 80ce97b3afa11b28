import { useState, type FormEvent } from "react";
import { errorMessage, request } from "../api/client";
import { isAdmin, useAuth } from "../auth";
import { Alert, Loading, formatDate, resultMessage } from "../components/ui";
import {
  CreateAccessTokenDocument,
  MyAccessTokensDocument,
  RevokeAccessTokenDocument,
  type AccessTokenScope,
} from "../gql/graphql";
import { useAsync } from "../hooks";

type Notice = { tone: "ok" | "error"; text: string } | null;

const EXPIRY_CHOICES: { label: string; days: number | null }[] = [
  { label: "30 days", days: 30 },
  { label: "90 days", days: 90 },
  { label: "1 year", days: 365 },
  { label: "Never", days: null },
];

function expiresAt(days: number | null): string | null {
  return days === null ? null : new Date(Date.now() + days * 86_400_000).toISOString();
}

/** Personal access tokens: create one (its secret is shown once, to copy), list, revoke. */
export function AccessTokensPage() {
  const { user } = useAuth();
  const tokens = useAsync(() => request(MyAccessTokensDocument, {}).then((data) => data.myAccessTokens), []);
  const [name, setName] = useState("");
  const [days, setDays] = useState<number | null>(90);
  const [admin, setAdmin] = useState(false);
  const [secret, setSecret] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const [notice, setNotice] = useState<Notice>(null);

  const create = async (event: FormEvent) => {
    event.preventDefault();
    setNotice(null);
    setSecret(null);
    setCopied(false);
    const scopes: AccessTokenScope[] = admin ? ["CHAT", "ADMIN"] : ["CHAT"];
    try {
      const { createAccessToken: result } = await request(CreateAccessTokenDocument, {
        name,
        scopes,
        expiresAt: expiresAt(days),
      });
      if (result.__typename === "AccessTokenCreated") {
        setSecret(result.secret);
        setName("");
        await tokens.reload();
      } else setNotice({ tone: "error", text: resultMessage(result) });
    } catch (caught) {
      setNotice({ tone: "error", text: errorMessage(caught) });
    }
  };

  const copy = async () => {
    if (!secret) return;
    try {
      await navigator.clipboard.writeText(secret);
      setCopied(true);
    } catch {
      setNotice({ tone: "error", text: "Copying failed: select the token and copy it by hand." });
    }
  };

  const revoke = async (id: string, tokenName: string) => {
    setNotice(null);
    try {
      const { revokeAccessToken: result } = await request(RevokeAccessTokenDocument, { id });
      if (result.__typename === "AccessToken") setNotice({ tone: "ok", text: `Token “${tokenName}” revoked: it stopped working.` });
      else setNotice({ tone: "error", text: resultMessage(result) });
      await tokens.reload();
    } catch (caught) {
      setNotice({ tone: "error", text: errorMessage(caught) });
    }
  };

  return (
    <main className="page" id="main">
      <section className="stack" aria-labelledby="tokens-title">
      <h1 id="tokens-title">Access tokens</h1>
      <p>
        Personal access tokens let scripts, editors and chat apps use ragql as you: send one as{" "}
        <code>Authorization: Bearer …</code> to <code>/graphql</code>, the OpenAI-compatible API at <code>/v1</code> or
        the MCP server at <code>/mcp</code>.
      </p>
      <form className="card row" onSubmit={create} aria-label="New access token">
        <label>
          Token name
          <input name="tokenName" required maxLength={120} value={name} onChange={(event) => setName(event.target.value)} />
        </label>
        <label>
          Expires
          <select
            name="tokenExpiry"
            value={days === null ? "never" : String(days)}
            onChange={(event) => setDays(event.target.value === "never" ? null : Number(event.target.value))}
          >
            {EXPIRY_CHOICES.map((choice) => (
              <option key={choice.label} value={choice.days === null ? "never" : String(choice.days)}>
                {choice.label}
              </option>
            ))}
          </select>
        </label>
        {isAdmin(user) && (
          <label className="inline">
            <input type="checkbox" name="tokenAdmin" checked={admin} onChange={(event) => setAdmin(event.target.checked)} />
            Also administrative fields (ADMIN)
          </label>
        )}
        <button type="submit" className="primary" disabled={!name.trim()}>
          Create token
        </button>
      </form>
      {secret && (
        <div className="card stack" role="status" aria-label="New token">
          <strong>Copy the token now: it is shown this once and never again.</strong>
          <div className="actions">
            <input readOnly aria-label="Token" size={56} value={secret} onFocus={(event) => event.target.select()} />
            <button type="button" onClick={() => void copy()}>
              {copied ? "Copied" : "Copy"}
            </button>
          </div>
        </div>
      )}
      {notice && <Alert tone={notice.tone}>{notice.text}</Alert>}
      <Alert>{tokens.error}</Alert>
      {tokens.loading && !tokens.data && <Loading what="access tokens" />}
      {tokens.data?.items.length === 0 && <p className="empty">No access tokens yet.</p>}
      {tokens.data && tokens.data.items.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Token</th>
                <th>Scopes</th>
                <th>Created</th>
                <th>Expires</th>
                <th>Last used</th>
                <th>Status</th>
                <th>Actions</th>
              </tr>
            </thead>
            <tbody>
              {tokens.data.items.map((token) => (
                <tr key={token.id}>
                  <td>{token.name}</td>
                  <td>
                    <code>{token.prefix}…</code>
                  </td>
                  <td>{token.scopes.join(", ")}</td>
                  <td>{formatDate(token.createdAt)}</td>
                  <td>{token.expiresAt ? formatDate(token.expiresAt) : "never"}</td>
                  <td>{token.lastUsedAt ? formatDate(token.lastUsedAt) : "never"}</td>
                  <td>{token.status.toLowerCase()}</td>
                  <td>
                    {token.status === "ACTIVE" && (
                      <button type="button" className="danger" onClick={() => void revoke(token.id, token.name)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      </section>
    </main>
  );
}
