/** Subscribing to one answer's events, resuming after reconnects from the last seq seen. */
import { useEffect, useReducer } from "react";
import { subscribe } from "../api/ws";
import { MessageStreamDocument, type MessageStreamSubscription, type SourceFieldsFragment } from "../gql/graphql";
import { applyStreamEvent, initialStream, type StreamEventInput, type StreamState } from "../lib/stream";

type WireEvent = MessageStreamSubscription["messageStream"];

export function toStreamEvent(event: WireEvent): StreamEventInput<SourceFieldsFragment> | { error: string } {
  switch (event.__typename) {
    case "SourcesEvent":
      return { kind: "SOURCES", seq: event.seq, sources: event.sources };
    case "TokenEvent":
      return { kind: "TOKEN", seq: event.seq, delta: event.delta };
    case "DoneEvent":
      return { kind: "DONE", seq: event.seq, content: event.text, status: event.status, truncated: event.truncated };
    case "ErrorEvent":
      return { kind: "ERROR", seq: event.seq, message: event.message, content: event.text, status: event.status };
    case "NotFound":
      return { error: event.message };
  }
}

type Action = { type: "event"; event: StreamEventInput<SourceFieldsFragment> } | { type: "fail"; message: string };

function reducer(state: StreamState<SourceFieldsFragment>, action: Action): StreamState<SourceFieldsFragment> {
  if (action.type === "event") return applyStreamEvent(state, action.event);
  return applyStreamEvent(state, { kind: "ERROR", seq: state.lastSeq, message: action.message });
}

/** Live state of an answer while it streams; `enabled` false once it is final. */
export function useMessageStream(messageId: string, enabled: boolean, initialText = "") {
  const [state, dispatch] = useReducer(reducer, undefined, () => initialStream<SourceFieldsFragment>(0, initialText));
  useEffect(() => {
    if (!enabled) return;
    // graphql-ws re-sends this same object when it reconnects, so keeping afterSeq current
    // makes every resubscription continue after the last event shown.
    const variables = { messageId, afterSeq: 0 };
    let seen = 0;
    const unsubscribe = subscribe(MessageStreamDocument, variables, {
      next: (data) => {
        const event = toStreamEvent(data.messageStream);
        if ("error" in event) {
          dispatch({ type: "fail", message: event.error });
          return;
        }
        seen = Math.max(seen, event.seq);
        variables.afterSeq = seen;
        dispatch({ type: "event", event });
      },
      error: (message) => dispatch({ type: "fail", message }),
    });
    return unsubscribe;
  }, [messageId, enabled]);
  return state;
}
