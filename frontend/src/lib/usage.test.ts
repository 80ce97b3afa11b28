import { describe, expect, it } from "vitest";
import { limitsText, modelsText, parseQuota, quotaTexts, sumDays } from "./usage";

const day = (date: string, messages: number, tokens: number) => ({ day: date, messages, tokens, promptTokens: tokens, completionTokens: 0 });

describe("usage page helpers", () => {
  it("says the effective limits that are set, with their source", () => {
    expect(limitsText([{ kind: "MESSAGES_PER_DAY", limit: null, source: "NONE", used: 3 }])).toBe("no limits");
    expect(
      limitsText([
        { kind: "MESSAGES_PER_DAY", limit: 500, source: "USER", used: 3 },
        { kind: "TOKENS_PER_DAY", limit: null, source: "NONE", used: 0 },
        { kind: "TOKENS_PER_MONTH", limit: 1_000_000, source: "GROUP", used: 1234 },
      ]),
    ).toBe("messages/day: 3 of 500 (user) · tokens/month: 1,234 of 1,000,000 (group)");
  });

  it("lists a user's models of the month and says how many more there are", () => {
    expect(modelsText([], 0)).toBe("—");
    const items = [
      { model: { name: "R manuals" }, messagesThisMonth: 3, tokensThisMonth: 1830 },
      { model: { name: "Notes" }, messagesThisMonth: 1, tokensThisMonth: 0 },
    ];
    expect(modelsText(items, 2)).toBe("R manuals: 3 messages, 1,830 tokens · Notes: 1 message, 0 tokens");
    expect(modelsText(items, 4)).toBe("R manuals: 3 messages, 1,830 tokens · Notes: 1 message, 0 tokens (+2 more)");
  });

  it("adds series day by day and refuses series of different days", () => {
    const summed = sumDays([
      [day("2026-11-30", 1, 10), day("2026-12-01", 2, 20)],
      [day("2026-11-30", 0, 0), day("2026-12-01", 5, 7)],
    ]);
    expect(summed.map((entry) => [entry.day, entry.messages, entry.tokens])).toEqual([
      ["2026-11-30", 1, 10],
      ["2026-12-01", 7, 27],
    ]);
    expect(sumDays([])).toEqual([]);
    expect(() => sumDays([[day("2026-12-01", 1, 1)], [day("2026-11-30", 1, 1)]])).toThrow(/same days/);
  });

  it("reads the limits editor: a number, unlimited, or not set", () => {
    expect(parseQuota({ messagesPerDay: "500", tokensPerDay: " Unlimited ", tokensPerMonth: "" })).toEqual({
      input: { messagesPerDay: 500, tokensPerDay: null, tokensPerMonth: null, unlimited: ["TOKENS_PER_DAY"] },
    });
    expect(parseQuota({ messagesPerDay: "1,000", tokensPerDay: "0", tokensPerMonth: "" })).toEqual({
      input: { messagesPerDay: 1000, tokensPerDay: 0, tokensPerMonth: null, unlimited: [] },
    });
    expect(parseQuota({ messagesPerDay: "-1", tokensPerDay: "", tokensPerMonth: "" })).toEqual({
      problem: "Messages per day: a whole number of 0 or more, “unlimited”, or empty (not set here).",
    });
    expect(quotaTexts({ messagesPerDay: 10, tokensPerDay: null, tokensPerMonth: null, unlimited: ["TOKENS_PER_MONTH"] })).toEqual({
      messagesPerDay: "10",
      tokensPerDay: "",
      tokensPerMonth: "unlimited",
    });
    expect(quotaTexts(null)).toEqual({ messagesPerDay: "", tokensPerDay: "", tokensPerMonth: "" });
  });
});
