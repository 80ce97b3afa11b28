/** graphql-transport-ws subscriptions on the same origin, authenticated in connection_init. */
import { createClient, type Client } from "graphql-ws";
import type { TypedDocumentString } from "../gql/graphql";
import { tokens } from "./client";

export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting";

let client: Client | null = null;
let connectionState: ConnectionState = "idle";
// The lazy socket closes on purpose when nothing is subscribed: that is not a lost connection.
let activeSubscriptions = 0;
const stateListeners = new Set<(state: ConnectionState) => void>();

function setState(state: ConnectionState): void {
  connectionState = state;
  for (const listener of stateListeners) listener(state);
}

export function onConnectionState(listener: (state: ConnectionState) => void): () => void {
  stateListeners.add(listener);
  listener(connectionState);
  return () => stateListeners.delete(listener);
}

function websocketUrl(): string {
  const { protocol, host } = window.location;
  return `${protocol === "https:" ? "wss:" : "ws:"}//${host}/graphql`;
}

function getClient(): Client {
  if (client) return client;
  client = createClient({
    url: websocketUrl(),
    lazy: true,
    keepAlive: 10_000,
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => true,
    retryWait: async (retries) => {
      await new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** retries, 8_000) * (0.5 + Math.random() / 2)));
    },
    // Called on every (re)connect, so a reconnect always carries a fresh access token.
    connectionParams: async () => {
      const token = await tokens.accessToken();
      return token ? { Authorization: `Bearer ${token}` } : {};
    },
    on: {
      connected: () => setState("connected"),
      closed: () => setState(activeSubscriptions > 0 ? "reconnecting" : "idle"),
      connecting: () => {
        if (connectionState !== "reconnecting") setState("connecting");
      },
    },
  });
  return client;
}

/** Drop the socket (on sign-in / sign-out) so the next subscription authenticates as the new user. */
export function resetSubscriptions(): void {
  client?.dispose();
  client = null;
}

export interface SubscriptionSink<T> {
  next: (value: T) => void;
  error?: (message: string) => void;
  complete?: () => void;
}

/**
 * Subscribe with a typed document. `variables` is sent again, as the same object, whenever
 * the socket reconnects — callers may update it (e.g. `afterSeq`) so a resubscription
 * resumes where the last one stopped.
 */
export function subscribe<TResult, TVariables extends Record<string, unknown>>(
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
  sink: SubscriptionSink<TResult>,
): () => void {
  activeSubscriptions += 1;
  let active = true;
  const release = () => {
    if (!active) return;
    active = false;
    activeSubscriptions -= 1;
  };
  const dispose = getClient().subscribe<TResult>(
    { query: document.toString(), variables },
    {
      next: (result) => {
        if (result.errors?.length) sink.error?.(result.errors.map((error) => error.message).join("; "));
        else if (result.data) sink.next(result.data as TResult);
      },
      error: (error) => {
        release();
        const message =
          error instanceof Error
            ? error.message
            : Array.isArray(error)
              ? error.map((item: { message?: string }) => item.message).join("; ")
              : "The live connection failed.";
        sink.error?.(message);
      },
      complete: () => {
        release();
        sink.complete?.();
      },
    },
  );
  return () => {
    release();
    dispose();
  };
}
