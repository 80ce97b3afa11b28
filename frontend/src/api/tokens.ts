/**
 * Session tokens: kept in localStorage (shared by tabs), refreshed silently.
 *
 * Refresh tokens are single-use and rotate, so two refreshes must never send the same
 * token: within a tab one refresh promise is shared by every caller, and across tabs
 * a Web Lock (when available) serializes them; whoever gets the lock second re-reads
 * storage and finds the already-rotated session instead of reusing the spent token.
 */

export interface Session {
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshToken: string;
  refreshTokenExpiresAt: string;
}

export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export type RefreshOutcome = { ok: true; session: Session } | { ok: false; message: string };
export type RefreshFunction = (refreshToken: string) => Promise<RefreshOutcome>;
export type LockFunction = <T>(name: string, body: () => Promise<T>) => Promise<T>;

const STORAGE_KEY = "ragql.session";
/** Refresh this long before the access token expires, so requests never carry a stale one. */
export const EXPIRY_SKEW_MS = 30_000;

export function webLock(): LockFunction | undefined {
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  if (!locks) return undefined;
  return (name, body) => locks.request(name, body) as ReturnType<typeof body>;
}

export class TokenStore {
  private inFlight: Promise<Session | null> | null = null;
  private listeners = new Set<(session: Session | null) => void>();

  constructor(
    private storage: KeyValueStorage,
    private refresh: RefreshFunction,
    private lock: LockFunction | undefined = undefined,
    private now: () => number = () => Date.now(),
  ) {}

  get session(): Session | null {
    const raw = this.storage.getItem(STORAGE_KEY);
    if (!raw) return null;
    try {
      return JSON.parse(raw) as Session;
    } catch {
      return null;
    }
  }

  set(session: Session | null): void {
    if (session) this.storage.setItem(STORAGE_KEY, JSON.stringify(session));
    else this.storage.removeItem(STORAGE_KEY);
    for (const listener of this.listeners) listener(session);
  }

  subscribe(listener: (session: Session | null) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  isFresh(session: Session): boolean {
    return Date.parse(session.accessTokenExpiresAt) - EXPIRY_SKEW_MS > this.now();
  }

  /** A usable access token, refreshing first when needed; null when signed out. */
  async accessToken(): Promise<string | null> {
    const session = this.session;
    if (!session) return null;
    if (this.isFresh(session)) return session.accessToken;
    const refreshed = await this.refreshNow(session.refreshToken);
    return refreshed?.accessToken ?? null;
  }

  /**
   * Rotate the session. `staleRefreshToken` is the token the caller saw: if storage already
   * holds a different one, another caller (or tab) rotated it meanwhile and that result is used.
   */
  refreshNow(staleRefreshToken?: string): Promise<Session | null> {
    if (this.inFlight) return this.inFlight;
    const run = async (): Promise<Session | null> => {
      const current = this.session;
      if (!current) return null;
      if (staleRefreshToken && current.refreshToken !== staleRefreshToken && this.isFresh(current)) {
        return current;
      }
      const outcome = await this.refresh(current.refreshToken);
      if (outcome.ok) {
        this.set(outcome.session);
        return outcome.session;
      }
      // Another tab may have won the race with this very token between our read and send.
      const after = this.session;
      if (after && after.refreshToken !== current.refreshToken) return after;
      this.set(null);
      return null;
    };
    const guarded = this.lock ? this.lock("ragql.refresh", run) : run();
    this.inFlight = guarded.finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }
}
