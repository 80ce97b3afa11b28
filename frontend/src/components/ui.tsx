/** Small shared pieces: progress bars, alerts, status badges, result messages. */
import type { ReactNode } from "react";

export function ProgressBar({
  value,
  label,
  tone,
}: {
  value: number;
  label: string;
  tone?: "ok" | "error";
}) {
  const percent = Math.max(0, Math.min(100, Math.round(value)));
  return (
    <div
      className={`progress ${tone ?? ""}`}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={percent}
    >
      <span style={{ width: `${percent}%` }} />
    </div>
  );
}

export function Alert({ tone = "error", children }: { tone?: "error" | "ok" | "warn"; children: ReactNode }) {
  if (!children) return null;
  return (
    <p className={`alert ${tone}`} role={tone === "error" ? "alert" : "status"}>
      {children}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status">
      Loading {what}…
    </p>
  );
}

/** The message of a typed failure result (any union member carrying `message`). */
export function resultMessage(result: { __typename: string } & { message?: string }): string {
  return result.message ?? `Unexpected result: ${result.__typename}`;
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return "—";
  return new Date(iso).toLocaleString();
}
