/**
 * Reassembling a streamed answer from `messageStream` events.
 *
 * Tokens carry a sequence number; after a reconnect the server replays everything after
 * `afterSeq`, and a replay may overlap what was already shown, so events are keyed by
 * seq and applied once. The text is the deltas in seq order; DONE carries the final
 * text (only citations that map to a source survive) and replaces the draft.
 *
 * The app subscribes with `coalesceTokens`: a TOKEN may then stand for several tokens
 * (its delta their text, its seq the last of them), and seq numbers skip the merged ones.
 * The server only merges events after `afterSeq`, so a merged event never overlaps one
 * already applied, and keying by seq stays exact.
 */

export type StreamKind = "SOURCES" | "TOKEN" | "DONE" | "ERROR";

export interface StreamEventInput<TSource> {
  kind: StreamKind;
  seq: number;
  delta?: string | null;
  sources?: TSource[] | null;
  content?: string | null;
  message?: string | null;
  status?: string | null;
  /** DONE: the model stopped at its output token limit. */
  truncated?: boolean | null;
}

export interface StreamState<TSource> {
  status: "streaming" | "done" | "error";
  /** Highest seq seen: the `afterSeq` of a resubscription. */
  lastSeq: number;
  deltas: Map<number, string>;
  text: string;
  sources: TSource[];
  error: string | null;
  finalStatus: string | null;
  truncated: boolean;
}

export function initialStream<TSource>(afterSeq = 0, text = ""): StreamState<TSource> {
  return { status: "streaming", lastSeq: afterSeq, deltas: new Map(), text, sources: [], error: null, finalStatus: null, truncated: false };
}

function joinDeltas(deltas: Map<number, string>): string {
  return [...deltas.entries()]
    .sort(([a], [b]) => a - b)
    .map(([, delta]) => delta)
    .join("");
}

export function applyStreamEvent<TSource>(
  state: StreamState<TSource>,
  event: StreamEventInput<TSource>,
): StreamState<TSource> {
  if (state.status !== "streaming" && event.kind !== "DONE" && event.kind !== "ERROR") return state;
  const lastSeq = Math.max(state.lastSeq, event.seq);
  switch (event.kind) {
    case "SOURCES":
      return { ...state, lastSeq, sources: event.sources ?? state.sources };
    case "TOKEN": {
      if (state.deltas.has(event.seq)) return { ...state, lastSeq };
      const deltas = new Map(state.deltas);
      deltas.set(event.seq, event.delta ?? "");
      return { ...state, lastSeq, deltas, text: joinDeltas(deltas) };
    }
    case "DONE":
      return {
        ...state,
        lastSeq,
        status: "done",
        text: event.content ?? state.text,
        sources: event.sources ?? state.sources,
        finalStatus: event.status ?? "COMPLETE",
        truncated: Boolean(event.truncated),
      };
    case "ERROR":
      return {
        ...state,
        lastSeq,
        status: "error",
        // The server keeps what was generated before the failure.
        text: event.content || state.text,
        error: event.message ?? "The answer failed.",
        finalStatus: event.status ?? "FAILED",
      };
    default:
      return state;
  }
}
