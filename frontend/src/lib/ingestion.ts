// What the documents page says about a document on its way to READY (issue 16): its place
// in the queue, an ETA from the server's measured speed, and chunk counts that say when
// they are running totals. Pure functions, so the wording is tested without a browser.

export interface IngestionState {
  status: string;
  percent: number;
  documentsAhead?: number | null;
  pagesDone?: number | null;
  pageCount?: number | null;
  etaSeconds?: number | null;
}

/** "waiting: 2 documents ahead", "next in line", or null when the place is not known. */
export function queuePlace(documentsAhead: number | null | undefined): string | null {
  if (documentsAhead == null) return null;
  if (documentsAhead <= 0) return "next in line";
  return `waiting: ${documentsAhead} ${documentsAhead === 1 ? "document" : "documents"} ahead`;
}

/** "about 40 s left", "about 3 min left"; empty when the server cannot tell yet. */
export function formatEta(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds)) return "";
  if (seconds < 1) return "almost done";
  if (seconds < 10) return `about ${Math.max(1, Math.round(seconds))} s left`;
  if (seconds < 60) return `about ${Math.round(seconds / 5) * 5} s left`;
  if (seconds < 3600) {
    const minutes = Math.floor(seconds / 60);
    const rest = Math.round((seconds - minutes * 60) / 10) * 10;
    if (minutes >= 10 || rest === 0) return `about ${Math.round(seconds / 60)} min left`;
    return rest === 60 ? `about ${minutes + 1} min left` : `about ${minutes} min ${rest} s left`;
  }
  const hours = Math.floor(seconds / 3600);
  return `about ${hours} h ${Math.round((seconds - hours * 3600) / 60)} min left`;
}

/** One line for a working document: its place while queued, else stage, percent, pages and ETA. */
export function ingestionLine(state: IngestionState): string {
  if (state.status === "QUEUED") {
    const place = queuePlace(state.documentsAhead);
    return place ? `queued — ${place}` : "queued";
  }
  const parts = [`${state.status.toLowerCase()} ${state.percent}%`];
  if (state.pagesDone != null && state.pageCount) parts.push(`page ${state.pagesDone} of ${state.pageCount}`);
  const eta = formatEta(state.etaSeconds);
  if (eta) parts.push(eta);
  return parts.join(" · ");
}

/** "12 passages" once final, "12 passages so far" while the count is still running. */
export function passagesLabel(count: number, final: boolean): string {
  const noun = count === 1 ? "passage" : "passages";
  return final ? `${count} ${noun}` : `${count} ${noun} so far`;
}
