import { describe, expect, it } from "vitest";
import { citedIndexes, sourceLink, splitCitations } from "./citations";

describe("citations", () => {
  it("splits text and markers", () => {
    expect(splitCitations("R is a language [1]. It has packages [2][3].")).toEqual([
      { type: "text", text: "R is a language " },
      { type: "citation", index: 1 },
      { type: "text", text: ". It has packages " },
      { type: "citation", index: 2 },
      { type: "citation", index: 3 },
      { type: "text", text: "." },
    ]);
  });

  it("reads grouped markers", () => {
    expect(citedIndexes("see [1, 4] and [2]")).toEqual([1, 2, 4]);
  });

  it("does not treat Markdown links or references as citations", () => {
    expect(citedIndexes("a [1](http://x) b\n[2]: http://y")).toEqual([]);
  });

  it("keeps unknown markers as text when a source set is given", () => {
    const segments = splitCitations("x [1] y [7]", new Set([1]));
    expect(segments).toEqual([
      { type: "text", text: "x " },
      { type: "citation", index: 1 },
      { type: "text", text: " y [7]" },
    ]);
  });

  it("builds page links to the kept original", () => {
    expect(sourceLink("/files/documents/abc", 12)).toBe("/files/documents/abc#page=12");
    expect(sourceLink("/files/documents/abc#page=3", 5)).toBe("/files/documents/abc#page=5");
    expect(sourceLink("/files/documents/abc", null)).toBe("/files/documents/abc");
    expect(sourceLink(null, 3)).toBeNull();
  });
});

describe("source locations", () => {
  it("shows the server's label for every kind and links PDF pages only", async () => {
    const { locationText, pdfPage } = await import("./citations");
    const slide = { locationLabel: "slide 7", pageStart: 7, location: { kind: "SLIDE", label: "slide 7", page: null, ocr: false } };
    expect(locationText(slide)).toBe("slide 7");
    expect(pdfPage(slide)).toBeNull();
    const scan = { locationLabel: "p. 3 (OCR)", pageStart: 3, location: { kind: "PAGE", label: "p. 3 (OCR)", page: 3, ocr: true } };
    expect(locationText(scan)).toBe("p. 3 (OCR)");
    expect(pdfPage(scan)).toBe(3);
    const sheet = { location: { kind: "SHEET", label: "Sheet 'Q2', rows 12–30", page: null, ocr: false } };
    expect(locationText(sheet)).toBe("Sheet 'Q2', rows 12–30");
    // Sources stored before locations existed: the older label and page.
    expect(locationText({ locationLabel: "p. 4" })).toBe("p. 4");
    expect(pdfPage({ pageStart: 4 })).toBe(4);
  });
});
