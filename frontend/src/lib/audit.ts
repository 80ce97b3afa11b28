import type { AuditLogQuery } from "../gql/graphql";

export type AuditEntry = AuditLogQuery["auditLog"]["items"][number];

const LABELS: Record<string, string> = { fields: "changed", via: "via", role: "role", documents: "documents", files: "files" };

function show(value: unknown): string {
  if (Array.isArray(value)) return value.map(show).join(", ");
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** What an entry is about, by name: "model R manuals", "user ann@example.com", "group (deleted)". */
export function auditTarget(entry: Pick<AuditEntry, "targetType" | "targetId" | "targetName">): string {
  if (entry.targetName) return `${entry.targetType} ${entry.targetName}`;
  return entry.targetId ? `${entry.targetType} (deleted)` : entry.targetType;
}

/**
 * The entry's details in words, with the user and group they name by email and name instead
 * of ids: "to group R readers", "member ann@example.com", "changed: name, temperature".
 */
export function auditDetails(entry: Pick<AuditEntry, "action" | "details" | "targetName" | "userEmail" | "groupName">): string {
  const details = (entry.details ?? {}) as Record<string, unknown>;
  const parts: string[] = [];
  const granting = /\.(grant|revoke)$/.test(entry.action);
  if (details.groupId) parts.push(`${granting ? "to group " : "group "}${entry.groupName ?? "(deleted)"}`);
  if (details.userId) parts.push(`${granting ? "to user " : "member "}${entry.userEmail ?? "(deleted account)"}`);
  for (const [key, value] of Object.entries(details)) {
    if (key === "userId" || key === "groupId") continue;
    if (key === "name" && value === entry.targetName) continue;
    if (value === null || value === undefined || (Array.isArray(value) && value.length === 0)) continue;
    parts.push(`${LABELS[key] ?? key}: ${show(value)}`);
  }
  return parts.join(" · ");
}
