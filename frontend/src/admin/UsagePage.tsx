import { useId, useState, type FormEvent } from "react";
import { errorMessage, request } from "../api/client";
import { Alert, Loading, resultMessage } from "../components/ui";
import {
  SetGroupQuotaDocument,
  SetUserQuotaDocument,
  UsagePerGroupDocument,
  UsagePerModelDocument,
  UsagePerUserDocument,
  type QuotaFieldsFragment,
  type UsageDayFieldsFragment,
} from "../gql/graphql";
import { useAsync, useDebounced } from "../hooks";
import { formatCount as number, limitsText, modelsText, parseQuota, QUOTA_FIELDS, quotaTexts, sumDays, type DaySeries } from "../lib/usage";

const PAGE = 50;
const DAYS = 30;

type Mode = "user" | "group" | "model";
type Notice = { tone: "ok" | "error"; text: string } | null;

/** One table row, whatever the mode. */
interface UsageRow {
  id: string;
  name: string;
  detail?: string;
  messagesToday: number;
  tokensToday: number;
  messagesThisMonth: number;
  tokensThisMonth: number;
  limits?: string;
  models?: string;
  quota?: QuotaFieldsFragment | null;
  days: UsageDayFieldsFragment[];
}

interface UsageList {
  rows: UsageRow[];
  totalCount: number;
  hasNextPage: boolean;
}

async function loadUsage(mode: Mode, offset: number, search: string): Promise<UsageList> {
  if (mode === "user") {
    const { usage } = await request(UsagePerUserDocument, { first: PAGE, offset, search: search || null });
    return {
      totalCount: usage.totalCount,
      hasNextPage: usage.hasNextPage,
      rows: usage.items.map((item) => ({
        id: item.user.id,
        name: item.user.email,
        detail: item.user.displayName || undefined,
        messagesToday: item.messagesToday,
        tokensToday: item.tokensToday,
        messagesThisMonth: item.messagesThisMonth,
        tokensThisMonth: item.tokensThisMonth,
        limits: limitsText(item.limits),
        models: modelsText(item.models.items, item.models.totalCount),
        quota: item.user.quota,
        days: item.days,
      })),
    };
  }
  if (mode === "group") {
    const { groupUsage } = await request(UsagePerGroupDocument, { first: PAGE, offset });
    return {
      totalCount: groupUsage.totalCount,
      hasNextPage: groupUsage.hasNextPage,
      rows: groupUsage.items.map((item) => ({
        id: item.group.id,
        name: item.group.name,
        detail: `${item.memberCount} member${item.memberCount === 1 ? "" : "s"}`,
        messagesToday: item.messagesToday,
        tokensToday: item.tokensToday,
        messagesThisMonth: item.messagesThisMonth,
        tokensThisMonth: item.tokensThisMonth,
        quota: item.group.quota,
        days: item.days,
      })),
    };
  }
  const { modelUsage } = await request(UsagePerModelDocument, { first: PAGE, offset });
  return {
    totalCount: modelUsage.totalCount,
    hasNextPage: modelUsage.hasNextPage,
    rows: modelUsage.items.map((item) => ({
      id: item.model.id,
      name: item.model.name,
      messagesToday: item.messagesToday,
      tokensToday: item.tokensToday,
      messagesThisMonth: item.messagesThisMonth,
      tokensThisMonth: item.tokensThisMonth,
      days: item.days,
    })),
  };
}

const MODE_WORDS: Record<Mode, { plural: string; one: string }> = {
  user: { plural: "users", one: "User" },
  group: { plural: "groups", one: "Group" },
  model: { plural: "models", one: "Model" },
};
const ALL = "all";

export function UsagePage() {
  const [mode, setMode] = useState<Mode>("user");
  const [search, setSearch] = useState("");
  const [page, setPage] = useState(0);
  const [charted, setCharted] = useState(ALL);
  const [editing, setEditing] = useState<UsageRow | null>(null);
  const [notice, setNotice] = useState<Notice>(null);
  const debounced = useDebounced(search);
  const usage = useAsync(() => loadUsage(mode, page * PAGE, debounced), [mode, page, debounced]);
  const words = MODE_WORDS[mode];
  const rows = usage.data?.rows ?? [];
  // A group's figures are its members': adding groups up would count a user in two groups twice.
  const canSum = mode !== "group";
  const selected = rows.find((row) => row.id === charted);
  const chartRows = selected ? [selected] : canSum ? rows : rows.slice(0, 1);
  const chartName = selected ? selected.name : canSum ? `all ${words.plural} listed` : (rows[0]?.name ?? "");

  const switchMode = (next: Mode) => {
    setMode(next);
    setPage(0);
    setCharted(ALL);
    setEditing(null);
    setNotice(null);
  };

  return (
    <section aria-labelledby="usage-title" className="stack">
      <h1 id="usage-title">Usage</h1>
      <p className="muted">
        Messages sent and LLM tokens the providers reported, today and this month (UTC). A group's figures are the sum of
        its current members'.
      </p>
      <div className="row">
        <label>
          Show usage per
          <select value={mode} onChange={(event) => switchMode(event.target.value as Mode)}>
            <option value="user">user</option>
            <option value="group">group</option>
            <option value="model">model</option>
          </select>
        </label>
        {mode === "user" && (
          <label>
            Search users
            <input
              type="search"
              value={search}
              placeholder="email or name"
              onChange={(event) => {
                setSearch(event.target.value);
                setPage(0);
              }}
            />
          </label>
        )}
        {rows.length > 0 && (
          <label>
            Chart
            <select value={selected ? charted : ALL} onChange={(event) => setCharted(event.target.value)}>
              <option value={ALL}>{canSum ? `All ${words.plural} listed` : `${rows[0].name} (first listed)`}</option>
              {rows.map((row) => (
                <option key={row.id} value={row.id}>
                  {row.name}
                </option>
              ))}
            </select>
          </label>
        )}
      </div>
      {notice && <Alert tone={notice.tone}>{notice.text}</Alert>}
      <Alert>{usage.error}</Alert>
      {usage.loading && !usage.data && <Loading what="usage" />}
      {usage.data && chartRows.length > 0 && (
        <div className="card usage-charts">
          <DayChart days={sumDays(chartRows.map((row) => row.days))} pick={(day) => day.messages} unit="messages" subject={chartName} />
          <DayChart days={sumDays(chartRows.map((row) => row.days))} pick={(day) => day.tokens} unit="tokens" subject={chartName} />
        </div>
      )}
      {usage.data?.rows.length === 0 && <p className="empty">No {words.plural}.</p>}
      {editing && (
        <QuotaEditor
          key={editing.id}
          mode={mode === "group" ? "group" : "user"}
          row={editing}
          onDone={async (text) => {
            setEditing(null);
            if (text) {
              setNotice({ tone: "ok", text });
              await usage.reload();
            }
          }}
          onError={(text) => setNotice({ tone: "error", text })}
        />
      )}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table className="stacked" aria-label={`Usage per ${mode}`}>
            <thead>
              <tr>
                <th>{words.one}</th>
                <th>Messages today</th>
                <th>Tokens today</th>
                <th>Messages this month</th>
                <th>Tokens this month</th>
                {mode === "user" && <th>Models this month</th>}
                {mode === "user" && <th>Effective limits</th>}
                {mode !== "model" && <th>Actions</th>}
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.id} data-usage-row={row.name}>
                  <td data-label={words.one}>
                    {row.name}
                    {row.detail && <span className="muted"> · {row.detail}</span>}
                  </td>
                  <td data-label="Messages today">{number(row.messagesToday)}</td>
                  <td data-label="Tokens today">{number(row.tokensToday)}</td>
                  <td data-label="Messages this month">{number(row.messagesThisMonth)}</td>
                  <td data-label="Tokens this month">{number(row.tokensThisMonth)}</td>
                  {mode === "user" && <td data-label="Models this month">{row.models}</td>}
                  {mode === "user" && <td data-label="Effective limits">{row.limits}</td>}
                  {mode !== "model" && (
                    <td className="actions">
                      <button type="button" className="small" onClick={() => setEditing(row)}>
                        Set limits
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {usage.data && (usage.data.hasNextPage || page > 0) && (
        <div className="actions">
          <button type="button" disabled={page === 0} onClick={() => setPage(page - 1)}>
            Previous
          </button>
          <button type="button" disabled={!usage.data.hasNextPage} onClick={() => setPage(page + 1)}>
            Next
          </button>
        </div>
      )}
    </section>
  );
}

const WIDTH = 600;
const HEIGHT = 120;
const AXIS = 16;

/** A 30-day bar chart in plain SVG: one bar a day, its figure in the bar's title (tooltip). */
function DayChart({
  days,
  pick,
  unit,
  subject,
}: {
  days: DaySeries[];
  pick: (day: DaySeries) => number;
  unit: string;
  subject: string;
}) {
  const titleId = useId();
  const descriptionId = useId();
  const values = days.map(pick);
  const max = Math.max(1, ...values);
  const total = values.reduce((sum, value) => sum + value, 0);
  const slot = WIDTH / Math.max(1, days.length);
  const first = days[0]?.day ?? "";
  const last = days[days.length - 1]?.day ?? "";
  return (
    <figure className="usage-chart">
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT + AXIS}`}
        role="img"
        aria-labelledby={`${titleId} ${descriptionId}`}
        data-chart={unit}
        preserveAspectRatio="none"
      >
        <title id={titleId}>{`${unit[0].toUpperCase()}${unit.slice(1)} per day, last ${days.length} days — ${subject}`}</title>
        <desc id={descriptionId}>{`${number(total)} ${unit} from ${first} to ${last}; at most ${number(Math.max(0, ...values))} on one day.`}</desc>
        <line x1={0} x2={WIDTH} y1={HEIGHT} y2={HEIGHT} className="usage-axis" />
        {days.map((day, index) => {
          const value = values[index];
          const height = value === 0 ? 0 : Math.max(2, (value / max) * (HEIGHT - 4));
          return (
            <rect
              key={day.day}
              className="usage-bar"
              data-day={day.day}
              data-value={value}
              x={index * slot + slot * 0.15}
              width={slot * 0.7}
              y={HEIGHT - height}
              height={height}
            >
              <title>{`${day.day}: ${number(value)} ${unit}`}</title>
            </rect>
          );
        })}
        <text x={0} y={HEIGHT + AXIS - 3} className="usage-label">
          {first}
        </text>
        <text x={WIDTH} y={HEIGHT + AXIS - 3} textAnchor="end" className="usage-label">
          {last}
        </text>
      </svg>
      <figcaption className="muted">
        {unit[0].toUpperCase() + unit.slice(1)} per day ({DAYS} days, UTC) — {subject}: {number(total)} in all
      </figcaption>
    </figure>
  );
}

/** A user's or group's own limits: a number, "unlimited", or empty (not set at this level). */
function QuotaEditor({
  mode,
  row,
  onDone,
  onError,
}: {
  mode: "user" | "group";
  row: UsageRow;
  onDone: (notice: string | null) => Promise<void>;
  onError: (text: string) => void;
}) {
  const [values, setValues] = useState(() => quotaTexts(row.quota));
  const [saving, setSaving] = useState(false);

  const save = async (event: FormEvent) => {
    event.preventDefault();
    const parsed = parseQuota(values);
    if ("problem" in parsed) return onError(parsed.problem);
    const { input } = parsed;
    setSaving(true);
    try {
      const result =
        mode === "user"
          ? (await request(SetUserQuotaDocument, { userId: row.id, input })).setUserQuota
          : (await request(SetGroupQuotaDocument, { groupId: row.id, input })).setGroupQuota;
      if (result.__typename === "User" || result.__typename === "AccessGroup") await onDone(`Limits of ${row.name} saved.`);
      else onError(resultMessage(result));
    } catch (caught) {
      onError(errorMessage(caught));
    } finally {
      setSaving(false);
    }
  };

  return (
    <form className="card stack" aria-label={`Limits of ${row.name}`} onSubmit={save}>
      <h2 style={{ margin: 0 }}>Limits of {row.name}</h2>
      <p className="muted">
        A number (0 refuses every request), “unlimited”, or empty: not set here —{" "}
        {mode === "user" ? "the user then gets their groups' limits." : "a group without it has no say."}
      </p>
      <div className="row">
        {QUOTA_FIELDS.map(({ key, label }) => (
          <label key={key}>
            {label}
            <input
              inputMode="numeric"
              value={values[key]}
              onChange={(event) => setValues({ ...values, [key]: event.target.value })}
              placeholder="not set"
            />
          </label>
        ))}
      </div>
      <div className="actions">
        <button type="submit" className="primary" disabled={saving}>
          Save limits
        </button>
        <button type="button" onClick={() => void onDone(null)}>
          Cancel
        </button>
      </div>
    </form>
  );
}
