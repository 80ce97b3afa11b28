/**
 * Session tokens. The refresh token lives only in the `ragql_refresh` cookie — HttpOnly,
 * SameSite=Strict, Path=/graphql — which the server sets and rotates when a request carries
 * `X-Ragql-Session: cookie`: no script, ours or an injected one, can read it. The access
 * token (15 minutes) is kept in this tab's memory only; a new tab or a reload gets one by
 * calling `refreshToken` with the cookie (`restore`).
 *
 * Refresh tokens are single-use and rotate, and every tab shares the one cookie, so two
 * refreshes must never be in flight at once: within a tab one refresh promise is shared by
 * every caller, and across tabs a Web Lock serializes them, so each refresh sends the
 * cookie the previous one set (the browser stores a response's Set-Cookie before the fetch
 * resolves, i.e. before the lock is released). A tab that waited on the lock while another
 * refreshed still refreshes itself (it cannot see the other tab's memory) — with the new cookie.
 *
 * Sign-in and sign-out are announced to the other tabs over a BroadcastChannel (no token in
 * the message): they drop their access token and follow (restore from the cookie, or sign out).
 */

export interface Session {
  accessToken: string;
  accessTokenExpiresAt: string;
}

export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** `transient`: the server could not be asked (offline, 5xx) — keep the session, try again later. */
export type RefreshOutcome = { ok: true; session: Session } | { ok: false; message: string; transient?: boolean };
/** Ask the server for a new access token with the cookie; `legacyRefreshToken` once, to migrate. */
export type RefreshFunction = (legacyRefreshToken?: string) => Promise<RefreshOutcome>;
export type LockFunction = <T>(name: string, body: () => Promise<T>) => Promise<T>;

export type SessionAnnouncement = "signed-in" | "signed-out";
export interface SessionChannel {
  post(message: SessionAnnouncement): void;
  listen(listener: (message: SessionAnnouncement) => void): () => void;
}

/** Where earlier versions kept the whole session, refresh token included (localStorage). */
export const LEGACY_STORAGE_KEY = "ragql.session";
/** Refresh this long before the access token expires, so requests never carry a stale one. */
export const EXPIRY_SKEW_MS = 30_000;

export function webLock(): LockFunction | undefined {
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  if (!locks) return undefined;
  return (name, body) => locks.request(name, body) as ReturnType<typeof body>;
}

export function broadcastChannel(name = "ragql.session"): SessionChannel | undefined {
  if (typeof BroadcastChannel === "undefined") return undefined;
  const channel = new BroadcastChannel(name);
  return {
    post: (message) => channel.postMessage(message),
    listen: (listener) => {
      const handler = (event: MessageEvent) => {
        if (event.data === "signed-in" || event.data === "signed-out") listener(event.data);
      };
      channel.addEventListener("message", handler);
      return () => channel.removeEventListener("message", handler);
    },
  };
}

export class TokenStore {
  private current: Session | null = null;
  private inFlight: Promise<Session | null> | null = null;
  private listeners = new Set<(session: Session | null) => void>();

  constructor(
    private refresh: RefreshFunction,
    private lock: LockFunction | undefined = undefined,
    private now: () => number = () => Date.now(),
    /** Storages an earlier version may have left a session in; emptied, the token migrated once. */
    private legacyStorages: KeyValueStorage[] = [],
    private channel: SessionChannel | undefined = undefined,
  ) {}

  get session(): Session | null {
    return this.current;
  }

  set(session: Session | null): void {
    this.current = session;
    for (const listener of this.listeners) listener(session);
  }

  subscribe(listener: (session: Session | null) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tell the other tabs (they follow through `onAnnouncement`). */
  announce(message: SessionAnnouncement): void {
    this.channel?.post(message);
  }

  onAnnouncement(listener: (message: SessionAnnouncement) => void): () => void {
    return this.channel?.listen(listener) ?? (() => undefined);
  }

  isFresh(session: Session): boolean {
    return Date.parse(session.accessTokenExpiresAt) - EXPIRY_SKEW_MS > this.now();
  }

  /** A usable access token, refreshing first when needed; null when signed out. */
  async accessToken(): Promise<string | null> {
    const session = this.current;
    if (!session) return null;
    if (this.isFresh(session)) return session.accessToken;
    const refreshed = await this.refreshNow(session.accessToken);
    return refreshed?.accessToken ?? null;
  }

  /** On page load (or when another tab signed in): a session from the cookie, if there is one. */
  restore(): Promise<Session | null> {
    return this.refreshNow();
  }

  /**
   * Rotate the session with the cookie. `staleAccessToken` is the token the caller saw: if
   * this tab holds a different, fresh one, another caller rotated meanwhile and that is used.
   */
  refreshNow(staleAccessToken?: string): Promise<Session | null> {
    if (this.inFlight) return this.inFlight;
    const run = async (): Promise<Session | null> => {
      const before = this.current;
      if (staleAccessToken && before && before.accessToken !== staleAccessToken && this.isFresh(before)) {
        return before;
      }
      // Read and delete a pre-cookie refresh token inside the lock: only one tab finds it,
      // so the single-use token is sent once (it is exchanged for the cookie).
      const outcome = await this.refresh(this.takeLegacyRefreshToken());
      if (outcome.ok) {
        this.set(outcome.session);
        return outcome.session;
      }
      if (outcome.transient) return null;
      this.set(null);
      return null;
    };
    const guarded = this.lock ? this.lock("ragql.refresh", run) : run();
    this.inFlight = guarded.finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private takeLegacyRefreshToken(): string | undefined {
    let token: string | undefined;
    for (const storage of this.legacyStorages) {
      try {
        const raw = storage.getItem(LEGACY_STORAGE_KEY);
        if (raw === null) continue;
        storage.removeItem(LEGACY_STORAGE_KEY);
        const parsed = JSON.parse(raw) as { refreshToken?: unknown };
        if (!token && typeof parsed.refreshToken === "string" && parsed.refreshToken) token = parsed.refreshToken;
      } catch {
        // Unreadable or unavailable storage: nothing to migrate.
      }
    }
    return token;
  }
}
