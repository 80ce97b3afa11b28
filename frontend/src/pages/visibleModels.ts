/** The models the signed-in user may chat with, kept current while the page is open. */
import { useEffect, useState } from "react";
import { errorMessage, request } from "../api/client";
import { subscribe } from "../api/ws";
import { ChatModelsDocument, VisibleModelsDocument, type ChatModelsQuery } from "../gql/graphql";

export type ChatModel = ChatModelsQuery["models"]["items"][number];

export interface VisibleModels {
  data: ChatModel[] | null;
  error: string | null;
  loading: boolean;
}

/**
 * One query for the first paint, then `visibleModels`: the server sends the list again when
 * an administrator grants or revokes access, changes a group or a role, or creates, renames
 * or deletes a model — the list updates in place, no reload. Whichever answer is newer wins
 * (the subscription's first message is the list as it is now).
 */
export function useVisibleModels(): VisibleModels {
  const [data, setData] = useState<ChatModel[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = false;
    let cancelled = false;
    request(ChatModelsDocument)
      .then((result) => {
        if (!cancelled && !live) setData(result.models.items);
      })
      .catch((caught) => {
        if (!cancelled && !live) setError(errorMessage(caught));
      });
    const stop = subscribe(VisibleModelsDocument, {}, {
      next: (result) => {
        live = true;
        setData(result.visibleModels.items);
        setError(null);
      },
      // The query's list stays; a lost live connection is shown by the header's connection state.
      error: () => undefined,
    });
    return () => {
      cancelled = true;
      stop();
    };
  }, []);
  return { data, error, loading: data === null && error === null };
}
