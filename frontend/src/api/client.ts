/** A small typed GraphQL-over-HTTP client: POST /graphql with a bearer token. */
import type { TypedDocumentString } from "../gql/graphql";
import { RefreshTokenDocument, type RefreshTokenMutation } from "../gql/graphql";
import { broadcastChannel, TokenStore, webLock, type KeyValueStorage, type RefreshOutcome } from "./tokens";

export const GRAPHQL_PATH = "/graphql";
/**
 * Sent on every request: this client keeps its refresh token in the server's HttpOnly
 * `ragql_refresh` cookie (logIn/signUp/refreshToken set it and answer `refreshToken: null`;
 * `refreshToken` without an argument reads it; `logOut` without one revokes it). A custom
 * header is also the refresh call's CSRF defence: no other site can send it without CORS.
 */
export const SESSION_HEADERS = { "X-Ragql-Session": "cookie" } as const;

export interface GraphQLErrorShape {
  message: string;
  extensions?: { code?: string } & Record<string, unknown>;
}

export class ApiError extends Error {
  constructor(
    message: string,
    public errors: GraphQLErrorShape[] = [],
    public status = 0,
  ) {
    super(message);
  }
}

async function post<TResult, TVariables>(
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables | undefined,
  token: string | null,
): Promise<{ data?: TResult; errors?: GraphQLErrorShape[]; status: number }> {
  let response: Response;
  try {
    response = await fetch(GRAPHQL_PATH, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/graphql-response+json, application/json",
        ...SESSION_HEADERS,
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query: document.toString(), variables: variables ?? {} }),
      // Same origin only: the cookie (Path=/graphql) goes with it, never anywhere else.
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError("Cannot reach the server. Check your connection and try again.");
  }
  let body: { data?: TResult; errors?: GraphQLErrorShape[] } = {};
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The server answered with HTTP ${response.status}.`, [], response.status);
  }
  return { ...body, status: response.status };
}

async function refreshWithServer(legacyRefreshToken?: string): Promise<RefreshOutcome> {
  let answer: { data?: RefreshTokenMutation; errors?: GraphQLErrorShape[]; status: number };
  try {
    // No argument: the server reads the cookie. A token left by an earlier version is
    // exchanged once for the cookie (the answer's refreshToken is null either way).
    answer = await post(RefreshTokenDocument, legacyRefreshToken ? { refreshToken: legacyRefreshToken } : {}, null);
  } catch (error) {
    return { ok: false, message: errorMessage(error), transient: true };
  }
  const { data, errors, status } = answer;
  const result = data?.refreshToken;
  if (result?.__typename === "AuthPayload") {
    const { accessToken, accessTokenExpiresAt } = result;
    return { ok: true, session: { accessToken, accessTokenExpiresAt } };
  }
  if (result?.__typename === "InvalidRefreshToken") return { ok: false, message: result.message };
  // No typed answer: the server or its database is down (5xx, DATABASE_UNAVAILABLE) — not a
  // verdict on the session, which is kept for the next try.
  const unavailable = status >= 500 || !!errors?.some((error) => error.extensions?.code === "DATABASE_UNAVAILABLE");
  return { ok: false, message: errors?.[0]?.message ?? "Session expired.", transient: unavailable };
}

export const tokens = new TokenStore(refreshWithServer, webLock(), undefined, legacyStorages(), broadcastChannel());

function legacyStorages(): KeyValueStorage[] {
  const found: KeyValueStorage[] = [];
  for (const name of ["localStorage", "sessionStorage"] as const) {
    try {
      found.push(window[name]);
    } catch {
      // Storage disabled (privacy settings): nothing was ever kept there.
    }
  }
  return found;
}

function isAuthError(errors: GraphQLErrorShape[] | undefined): boolean {
  return !!errors?.some((error) => {
    const code = error.extensions?.code;
    return code === "UNAUTHENTICATED" || /not (signed|logged) in|authenticat/i.test(error.message);
  });
}

/** Run an operation; refreshes the session once and retries if the server says the token is stale. */
export async function request<TResult, TVariables>(
  document: TypedDocumentString<TResult, TVariables>,
  ...[variables]: TVariables extends Record<string, never> ? [] | [TVariables] : [TVariables]
): Promise<TResult> {
  let token = await tokens.accessToken();
  let result = await post(document, variables, token);
  if (token && isAuthError(result.errors)) {
    const refreshed = await tokens.refreshNow(token);
    token = refreshed?.accessToken ?? null;
    result = await post(document, variables, token);
  }
  if (result.errors?.length) {
    throw new ApiError(result.errors.map((error) => error.message).join("; "), result.errors, result.status);
  }
  if (!result.data) throw new ApiError(`The server answered with HTTP ${result.status}.`, [], result.status);
  return result.data;
}

/** Human-readable message for anything thrown by `request`. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
