import { describe, expect, it } from "vitest";
import { formatEta, ingestionLine, passagesLabel, queuePlace } from "./ingestion";

describe("ingestion status", () => {
  it("tells a queued document's place", () => {
    expect(queuePlace(2)).toBe("waiting: 2 documents ahead");
    expect(queuePlace(1)).toBe("waiting: 1 document ahead");
    expect(queuePlace(0)).toBe("next in line");
    expect(queuePlace(null)).toBeNull();
    expect(ingestionLine({ status: "QUEUED", percent: 0, documentsAhead: 2 })).toBe("queued — waiting: 2 documents ahead");
    expect(ingestionLine({ status: "QUEUED", percent: 0, documentsAhead: null })).toBe("queued");
  });

  it("says the ETA in words that match its size", () => {
    expect(formatEta(null)).toBe("");
    expect(formatEta(0.2)).toBe("almost done");
    expect(formatEta(7.4)).toBe("about 7 s left");
    expect(formatEta(42)).toBe("about 40 s left");
    expect(formatEta(90)).toBe("about 1 min 30 s left");
    // The issue: "about 2 min" with 4 to go — 4 minutes are 4 minutes.
    expect(formatEta(240)).toBe("about 4 min left");
    expect(formatEta(1500)).toBe("about 25 min left");
    expect(formatEta(5400)).toBe("about 1 h 30 min left");
  });

  it("puts stage, pages and ETA on one line while working", () => {
    expect(ingestionLine({ status: "EMBEDDING", percent: 45, pagesDone: 50, pageCount: 113, etaSeconds: 20 })).toBe(
      "embedding 45% · page 50 of 113 · about 20 s left",
    );
    expect(ingestionLine({ status: "PARSING", percent: 3, etaSeconds: null })).toBe("parsing 3%");
  });

  it("labels running chunk totals", () => {
    expect(passagesLabel(12, false)).toBe("12 passages so far");
    expect(passagesLabel(1, true)).toBe("1 passage");
    expect(passagesLabel(508, true)).toBe("508 passages");
  });
});
