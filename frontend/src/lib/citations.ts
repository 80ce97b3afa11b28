/** Citation markers [n] in answers: parsed into text/citation segments. */

export type Segment = { type: "text"; text: string } | { type: "citation"; index: number };

// [1] or [1, 2] / [1][2]; not Markdown links "[1](...)" or references "[1]:".
const MARKER = /\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\](?![(:])/g;

export function splitCitations(text: string, known?: ReadonlySet<number>): Segment[] {
  const segments: Segment[] = [];
  let last = 0;
  for (const match of text.matchAll(MARKER)) {
    const numbers = match[1].split(",").map((part) => Number.parseInt(part.trim(), 10));
    if (known && !numbers.every((number) => known.has(number))) continue;
    const start = match.index ?? 0;
    if (start > last) segments.push({ type: "text", text: text.slice(last, start) });
    for (const index of numbers) segments.push({ type: "citation", index });
    last = start + match[0].length;
  }
  if (last < text.length) segments.push({ type: "text", text: text.slice(last) });
  return segments;
}

export function citedIndexes(text: string): number[] {
  const found = new Set<number>();
  for (const segment of splitCitations(text)) if (segment.type === "citation") found.add(segment.index);
  return [...found].sort((a, b) => a - b);
}

/** Where a source is, as the server labels it ("p. 4", "slide 7", "Sheet 'Q2', rows 12–30",
 * "§ Benefits › Leave", "p. 3 (OCR)"); falls back to the older locationLabel. */
export interface SourceWhere {
  locationLabel?: string | null;
  location?: { kind: string; label: string; page?: number | null; ocr: boolean } | null;
}

export function locationText(source: SourceWhere): string {
  return source.location?.label || source.locationLabel || "";
}

/** The PDF page a viewer can open (#page=N): PDF pages only, not slides or Word pages. */
export function pdfPage(source: SourceWhere & { pageStart?: number | null }): number | null {
  if (source.location) return source.location.kind === "PAGE" ? (source.location.page ?? null) : null;
  return source.pageStart ?? null;
}

/** A link that opens the kept original at the cited page (PDF viewers honour #page=N). */
export function sourceLink(url: string | null | undefined, page: number | null | undefined): string | null {
  if (!url) return null;
  const base = url.split("#")[0];
  return page ? `${base}#page=${page}` : base;
}
