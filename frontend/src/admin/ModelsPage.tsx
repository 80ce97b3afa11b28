import { useState, type FormEvent } from "react";
import { errorMessage, request } from "../api/client";
import { Alert, Loading, resultMessage } from "../components/ui";
import {
  AdminGroupsDocument,
  AdminModelDocument,
  AdminModelsDocument,
  AdminUsersDocument,
  CreateModelDocument,
  DeleteModelDocument,
  GrantModelAccessDocument,
  RevokeModelAccessDocument,
  TestModelConnectionDocument,
  UpdateModelDocument,
  type AdminModelFieldsFragment,
  type ProviderKind,
} from "../gql/graphql";
import { useAsync, useDebounced } from "../hooks";
import { linkHandler, navigate } from "../router";

type Notice = { tone: "ok" | "error"; text: string } | null;

export const PROVIDERS: { value: ProviderKind; label: string }[] = [
  { value: "EXTRACTIVE", label: "Extractive (built in, no LLM)" },
  { value: "OLLAMA", label: "Ollama" },
  { value: "OPENAI_COMPATIBLE", label: "OpenAI-compatible" },
  { value: "ANTHROPIC", label: "Anthropic" },
];
const providerLabel = (value: ProviderKind) => PROVIDERS.find((item) => item.value === value)?.label ?? value;

function invalidText(result: { message: string; fieldErrors?: { field: string; message: string }[] }): string {
  const fields = result.fieldErrors?.map((item) => `${item.field}: ${item.message}`).join("; ");
  return fields ? `${result.message} (${fields})` : result.message;
}

export function ModelsPage() {
  const [search, setSearch] = useState("");
  const debounced = useDebounced(search);
  const models = useAsync(() => request(AdminModelsDocument, { search: debounced || null }).then((data) => data.models), [debounced]);
  const [name, setName] = useState("");
  const [provider, setProvider] = useState<ProviderKind>("EXTRACTIVE");
  const [notice, setNotice] = useState<Notice>(null);

  const create = async (event: FormEvent) => {
    event.preventDefault();
    setNotice(null);
    try {
      const { createModel: result } = await request(CreateModelDocument, { input: { name, provider } });
      if (result.__typename === "Model") navigate(`/admin/models/${result.id}`);
      else if (result.__typename === "InvalidInput") setNotice({ tone: "error", text: invalidText(result) });
      else setNotice({ tone: "error", text: result.message });
    } catch (caught) {
      setNotice({ tone: "error", text: errorMessage(caught) });
    }
  };

  return (
    <section aria-labelledby="models-title" className="stack">
      <h1 id="models-title">Models</h1>
      <form className="card row" onSubmit={create} aria-label="New model">
        <label>
          Model name
          <input name="modelName" required value={name} onChange={(event) => setName(event.target.value)} />
        </label>
        <label>
          Provider
          <select name="provider" value={provider} onChange={(event) => setProvider(event.target.value as ProviderKind)}>
            {PROVIDERS.map((item) => (
              <option key={item.value} value={item.value}>{item.label}</option>
            ))}
          </select>
        </label>
        <button type="submit" className="primary" disabled={!name.trim()}>Create model</button>
      </form>
      {notice && <Alert tone={notice.tone}>{notice.text}</Alert>}
      <label>
        Search models
        <input type="search" value={search} onChange={(event) => setSearch(event.target.value)} />
      </label>
      <Alert>{models.error}</Alert>
      {models.loading && !models.data && <Loading what="models" />}
      {models.data?.items.length === 0 && <p className="empty">{debounced ? "No model matches." : "No models yet. Create one above."}</p>}
      {models.data && models.data.items.length > 0 && (
        <div className="table-wrap">
          <table className="stacked" aria-label="Models">
            <thead>
              <tr><th>Name</th><th>Provider</th><th>Documents</th><th>Access</th><th>Actions</th></tr>
            </thead>
            <tbody>
              {models.data.items.map((model) => (
                <tr key={model.id}>
                  <td data-label="Name">
                    <a href={`/admin/models/${model.id}`} onClick={linkHandler(`/admin/models/${model.id}`)}>{model.name}</a>
                    {model.description && <div className="muted">{model.description}</div>}
                  </td>
                  <td data-label="Provider">{providerLabel(model.provider)}{model.llmModelName ? ` · ${model.llmModelName}` : ""}</td>
                  <td data-label="Documents">{model.documentCount}</td>
                  <td data-label="Access">{model.grants?.length ? model.grants.map((grant) => grant.group?.name ?? grant.user?.email).join(", ") : <span className="muted">nobody yet</span>}</td>
                  <td className="actions" data-label="Actions">
                    <a href={`/admin/models/${model.id}`} onClick={linkHandler(`/admin/models/${model.id}`)}>Settings</a>
                    <a href={`/admin/models/${model.id}/documents`} onClick={linkHandler(`/admin/models/${model.id}/documents`)}>Documents</a>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function ModelEditPage({ modelId }: { modelId: string }) {
  const model = useAsync(() => request(AdminModelDocument, { id: modelId }).then((data) => data.model), [modelId]);
  if (model.loading && !model.data) return <Loading what="the model" />;
  if (model.error) return <Alert>{model.error}</Alert>;
  if (!model.data) return <p className="empty">This model does not exist (or was deleted).</p>;
  return <ModelEditor key={model.data.id} model={model.data} reload={model.reload} />;
}

function ModelEditor({ model, reload }: { model: AdminModelFieldsFragment; reload: () => Promise<void> }) {
  const [form, setForm] = useState({
    name: model.name,
    description: model.description,
    provider: model.provider,
    llmModelName: model.llmModelName ?? "",
    baseUrl: model.baseUrl ?? "",
    systemPrompt: model.systemPrompt ?? "",
    temperature: String(model.temperature ?? 0.2),
    maxOutputTokens: String(model.maxOutputTokens ?? 1024),
    topK: String(model.topK ?? 6),
    hybridSearch: model.hybridSearch ?? true,
  });
  const [apiKey, setApiKey] = useState("");
  const [clearApiKey, setClearApiKey] = useState(false);
  const [notice, setNotice] = useState<Notice>(null);
  const [testing, setTesting] = useState(false);
  const update = (field: keyof typeof form) => (event: React.ChangeEvent<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>) =>
    setForm({ ...form, [field]: event.target.type === "checkbox" ? (event.target as HTMLInputElement).checked : event.target.value });

  const save = async (event: FormEvent) => {
    event.preventDefault();
    setNotice(null);
    try {
      const { updateModel: result } = await request(UpdateModelDocument, {
        id: model.id,
        input: {
          name: form.name,
          description: form.description,
          provider: form.provider,
          llmModelName: form.llmModelName || null,
          baseUrl: form.baseUrl || null,
          systemPrompt: form.systemPrompt,
          temperature: Number(form.temperature),
          maxOutputTokens: Number(form.maxOutputTokens),
          topK: Number(form.topK),
          hybridSearch: form.hybridSearch,
          ...(apiKey ? { apiKey } : {}),
          clearApiKey,
        },
      });
      if (result.__typename === "Model") {
        setNotice({ tone: "ok", text: "Saved." });
        setApiKey("");
        setClearApiKey(false);
        await reload();
      } else if (result.__typename === "InvalidInput") setNotice({ tone: "error", text: invalidText(result) });
      else setNotice({ tone: "error", text: result.message });
    } catch (caught) {
      setNotice({ tone: "error", text: errorMessage(caught) });
    }
  };

  const testConnection = async () => {
    setTesting(true);
    setNotice(null);
    try {
      const { testModelConnection: result } = await request(TestModelConnectionDocument, { modelId: model.id });
      if (result.__typename === "ModelConnectionResult") {
        const latency = result.latencyMs != null ? ` (${Math.round(result.latencyMs)} ms)` : "";
        setNotice({ tone: result.ok ? "ok" : "error", text: `${result.message}${latency}` });
      } else setNotice({ tone: "error", text: result.message });
    } catch (caught) {
      setNotice({ tone: "error", text: errorMessage(caught) });
    } finally {
      setTesting(false);
    }
  };

  const remove = async () => {
    if (!window.confirm(`Delete “${model.name}” with all its documents and chats? This cannot be undone.`)) return;
    try {
      const { deleteModel: result } = await request(DeleteModelDocument, { id: model.id });
      if (result.__typename === "ModelDeleted") navigate("/admin/models");
      else setNotice({ tone: "error", text: result.message });
    } catch (caught) {
      setNotice({ tone: "error", text: errorMessage(caught) });
    }
  };

  const needsConnection = form.provider !== "EXTRACTIVE";
  return (
    <section aria-labelledby="model-title" className="stack">
      <div className="row" style={{ alignItems: "center" }}>
        <h1 id="model-title" style={{ flex: 1, margin: 0 }}>{model.name}</h1>
        <a href={`/admin/models/${model.id}/documents`} onClick={linkHandler(`/admin/models/${model.id}/documents`)}>
          Documents ({model.documentCount})
        </a>
      </div>
      {notice && <Alert tone={notice.tone}>{notice.text}</Alert>}
      <form className="card stack" onSubmit={save} aria-label="Model settings">
        <div className="grid-2">
          <label>Name<input value={form.name} onChange={update("name")} required /></label>
          <label>
            Provider
            <select value={form.provider} onChange={update("provider")}>
              {PROVIDERS.map((item) => <option key={item.value} value={item.value}>{item.label}</option>)}
            </select>
          </label>
        </div>
        <label>Description<input value={form.description} onChange={update("description")} /></label>
        {needsConnection && (
          <div className="grid-2">
            <label>LLM model name<input value={form.llmModelName} onChange={update("llmModelName")} placeholder="e.g. llama3.2, gpt-4o-mini" /></label>
            <label>Base URL<input type="url" value={form.baseUrl} onChange={update("baseUrl")} placeholder="http://localhost:11434" /></label>
            <label>
              API key <span className="muted">(write-only)</span>
              <input
                type="password"
                autoComplete="off"
                value={apiKey}
                onChange={(event) => setApiKey(event.target.value)}
                placeholder={model.apiKeySet ? `Set — ends in ${model.apiKeyLast4 ?? "····"}; type to replace` : "Not set"}
                aria-describedby="api-key-help"
              />
              <span id="api-key-help" className="muted" style={{ fontWeight: 400 }}>
                The key is stored encrypted and never shown again.
              </span>
            </label>
            {model.apiKeySet && (
              <label className="inline">
                <input type="checkbox" checked={clearApiKey} onChange={(event) => setClearApiKey(event.target.checked)} /> Remove the stored key
              </label>
            )}
          </div>
        )}
        <label>System prompt<textarea rows={3} value={form.systemPrompt} onChange={update("systemPrompt")} /></label>
        {!needsConnection && (
          <p className="muted small-text" data-testid="extractive-note">
            The built-in extractive answerer quotes the retrieved passages itself: no LLM, so no temperature, output limit or connection to test.
          </p>
        )}
        <div className="grid-2">
          {needsConnection && (
            <>
              <label>Temperature<input type="number" step="0.1" min="0" max="2" value={form.temperature} onChange={update("temperature")} /></label>
              <label>Max output tokens<input type="number" min="1" value={form.maxOutputTokens} onChange={update("maxOutputTokens")} /></label>
            </>
          )}
          <label>Passages per answer (top-k)<input type="number" min="1" max="50" value={form.topK} onChange={update("topK")} /></label>
          <label className="inline"><input type="checkbox" checked={form.hybridSearch} onChange={update("hybridSearch")} /> Hybrid search (vectors + BM25)</label>
        </div>
        <div className="actions">
          <button type="submit" className="primary">Save settings</button>
          {needsConnection && <button type="button" onClick={testConnection} disabled={testing}>{testing ? "Testing…" : "Test connection"}</button>}
          <button type="button" className="danger" onClick={remove}>Delete model</button>
        </div>
      </form>
      <GrantsEditor model={model} reload={reload} onNotice={setNotice} />
    </section>
  );
}

function GrantsEditor({ model, reload, onNotice }: { model: AdminModelFieldsFragment; reload: () => Promise<void>; onNotice: (notice: Notice) => void }) {
  const groups = useAsync(() => request(AdminGroupsDocument, {}).then((data) => data.accessGroups.items), []);
  const [groupId, setGroupId] = useState("");
  const [userEmail, setUserEmail] = useState("");

  const grant = async (variables: { groupId?: string; userId?: string }, label: string) => {
    try {
      const { grantModelAccess: result } = await request(GrantModelAccessDocument, { modelId: model.id, ...variables });
      if (result.__typename === "ModelAccessGrant") onNotice({ tone: "ok", text: `Access granted to ${label}.` });
      else onNotice({ tone: "error", text: resultMessage(result) });
      await reload();
    } catch (caught) {
      onNotice({ tone: "error", text: errorMessage(caught) });
    }
  };

  const grantUser = async (event: FormEvent) => {
    event.preventDefault();
    const { users } = await request(AdminUsersDocument, { search: userEmail, first: 5, offset: 0 });
    const match = users.items.find((user) => user.email.toLowerCase() === userEmail.trim().toLowerCase());
    if (!match) onNotice({ tone: "error", text: `No account with the email ${userEmail}.` });
    else await grant({ userId: match.id }, match.email);
    setUserEmail("");
  };

  const revoke = async (variables: { groupId?: string; userId?: string }) => {
    try {
      const { revokeModelAccess: result } = await request(RevokeModelAccessDocument, { modelId: model.id, ...variables });
      if (result.__typename === "ModelAccessRevoked") onNotice({ tone: "ok", text: "Access revoked." });
      else onNotice({ tone: "error", text: resultMessage(result) });
      await reload();
    } catch (caught) {
      onNotice({ tone: "error", text: errorMessage(caught) });
    }
  };

  return (
    <section className="card stack" aria-labelledby="grants-title">
      <h2 id="grants-title" style={{ margin: 0 }}>Who may use this model</h2>
      {model.grants?.length ? (
        <ul className="member-list">
          {model.grants.map((grant) => (
            <li key={grant.id}>
              <span>{grant.group ? <>Group <strong>{grant.group.name}</strong></> : <>User <strong>{grant.user?.email}</strong></>}</span>
              <button type="button" className="small" onClick={() => revoke(grant.group ? { groupId: grant.group.id } : { userId: grant.user?.id })}>
                Revoke
              </button>
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted">Only administrators can use this model until you grant access.</p>
      )}
      <div className="row">
        <label>
          Grant to a group
          <select name="grantGroup" value={groupId} onChange={(event) => setGroupId(event.target.value)}>
            <option value="">Choose a group…</option>
            {groups.data?.map((group) => <option key={group.id} value={group.id}>{group.name}</option>)}
          </select>
        </label>
        <button
          type="button"
          disabled={!groupId}
          onClick={() => {
            const group = groups.data?.find((item) => item.id === groupId);
            setGroupId("");
            void grant({ groupId }, `group ${group?.name ?? ""}`);
          }}
        >
          Grant group
        </button>
      </div>
      <form className="row" onSubmit={grantUser}>
        <label>
          Grant to one user (email)
          <input type="email" name="grantUser" value={userEmail} onChange={(event) => setUserEmail(event.target.value)} />
        </label>
        <button type="submit" disabled={!userEmail.trim()}>Grant user</button>
      </form>
    </section>
  );
}
