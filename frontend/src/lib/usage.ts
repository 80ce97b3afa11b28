/** Pure helpers of the admin usage page: effective limits in words, summed day series, and
 * the limits editor's input (a number, "unlimited", or empty: not set at this level). */
import type { QuotaKind } from "../gql/graphql";

export interface DaySeries {
  day: string;
  messages: number;
  tokens: number;
  promptTokens: number;
  completionTokens: number;
}

export const KIND_LABELS: Record<QuotaKind, string> = {
  MESSAGES_PER_DAY: "messages/day",
  TOKENS_PER_DAY: "tokens/day",
  TOKENS_PER_MONTH: "tokens/month",
};

export const formatCount = (value: number) => value.toLocaleString("en-US");

/** "messages/day: 3 of 500 (user) · tokens/month: 0 of 1,000,000 (group)", or "no limits". */
export function limitsText(limits: { kind: QuotaKind; limit?: number | null; source: string; used: number }[]): string {
  const set = limits.filter((limit) => limit.limit != null);
  if (set.length === 0) return "no limits";
  return set
    .map((limit) => `${KIND_LABELS[limit.kind]}: ${formatCount(limit.used)} of ${formatCount(limit.limit ?? 0)} (${limit.source.toLowerCase()})`)
    .join(" · ");
}

/** "R manuals: 3 messages, 183 tokens · Notes: 1 message, 0 tokens (+2 more)", or "—". */
export function modelsText(items: { model: { name: string }; messagesThisMonth: number; tokensThisMonth: number }[], totalCount: number): string {
  if (items.length === 0) return "—";
  const listed = items
    .map(
      (item) =>
        `${item.model.name}: ${formatCount(item.messagesThisMonth)} message${item.messagesThisMonth === 1 ? "" : "s"}, ${formatCount(item.tokensThisMonth)} tokens`,
    )
    .join(" · ");
  return totalCount > items.length ? `${listed} (+${totalCount - items.length} more)` : listed;
}

/** The day-by-day sum of several series that list the same days. */
export function sumDays<T extends DaySeries>(series: T[][]): DaySeries[] {
  if (series.length === 0) return [];
  return series[0].map((day, index) => {
    const sum: DaySeries = {
      day: day.day,
      messages: day.messages,
      tokens: day.tokens,
      promptTokens: day.promptTokens,
      completionTokens: day.completionTokens,
    };
    for (const other of series.slice(1)) {
      const same = other[index];
      if (!same || same.day !== day.day) throw new Error(`usage series do not list the same days (${day.day})`);
      sum.messages += same.messages;
      sum.tokens += same.tokens;
      sum.promptTokens += same.promptTokens;
      sum.completionTokens += same.completionTokens;
    }
    return sum;
  });
}

export type QuotaKey = "messagesPerDay" | "tokensPerDay" | "tokensPerMonth";

export const QUOTA_FIELDS: { key: QuotaKey; kind: QuotaKind; label: string }[] = [
  { key: "messagesPerDay", kind: "MESSAGES_PER_DAY", label: "Messages per day" },
  { key: "tokensPerDay", kind: "TOKENS_PER_DAY", label: "Tokens per day" },
  { key: "tokensPerMonth", kind: "TOKENS_PER_MONTH", label: "Tokens per month" },
];

export interface QuotaInputValue {
  messagesPerDay: number | null;
  tokensPerDay: number | null;
  tokensPerMonth: number | null;
  unlimited: QuotaKind[];
}

/** The editor's texts of a stored quota. */
export function quotaTexts(quota: { unlimited: QuotaKind[] } & Partial<Record<QuotaKey, number | null>> | null | undefined): Record<QuotaKey, string> {
  const texts = {} as Record<QuotaKey, string>;
  for (const { key, kind } of QUOTA_FIELDS) {
    const value = quota?.[key];
    texts[key] = quota?.unlimited.includes(kind) ? "unlimited" : value != null ? String(value) : "";
  }
  return texts;
}

/** The editor's texts as QuotaInput, or the sentence saying which one is wrong. */
export function parseQuota(texts: Record<QuotaKey, string>): { input: QuotaInputValue } | { problem: string } {
  const input: QuotaInputValue = { messagesPerDay: null, tokensPerDay: null, tokensPerMonth: null, unlimited: [] };
  for (const { key, kind, label } of QUOTA_FIELDS) {
    const text = texts[key].trim().toLowerCase().replace(/[,_\s]/g, "");
    if (text === "") continue;
    if (text === "unlimited") input.unlimited.push(kind);
    else if (/^\d+$/.test(text)) input[key] = Number(text);
    else return { problem: `${label}: a whole number of 0 or more, “unlimited”, or empty (not set here).` };
  }
  return { input };
}
