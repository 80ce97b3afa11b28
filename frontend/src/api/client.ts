/** A small typed GraphQL-over-HTTP client: POST /graphql with a bearer token. */
import type { TypedDocumentString } from "../gql/graphql";
import { RefreshTokenDocument } from "../gql/graphql";
import { TokenStore, webLock, type RefreshOutcome } from "./tokens";

export const GRAPHQL_PATH = "/graphql";

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
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query: document.toString(), variables: variables ?? {} }),
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

async function refreshWithServer(refreshToken: string): Promise<RefreshOutcome> {
  const { data, errors } = await post(RefreshTokenDocument, { refreshToken }, null);
  const result = data?.refreshToken;
  if (result?.__typename === "AuthPayload") {
    const { accessToken, accessTokenExpiresAt, refreshToken: next, refreshTokenExpiresAt } = result;
    return { ok: true, session: { accessToken, accessTokenExpiresAt, refreshToken: next, refreshTokenExpiresAt } };
  }
  return { ok: false, message: result?.message ?? errors?.[0]?.message ?? "Session expired." };
}

export const tokens = new TokenStore(window.localStorage, refreshWithServer, webLock());

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
    const refreshed = await tokens.refreshNow(tokens.session?.refreshToken);
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
