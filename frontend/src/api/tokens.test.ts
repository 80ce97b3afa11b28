import { describe, expect, it } from "vitest";
import {
  LEGACY_STORAGE_KEY,
  TokenStore,
  type KeyValueStorage,
  type LockFunction,
  type RefreshOutcome,
  type Session,
  type SessionAnnouncement,
  type SessionChannel,
} from "./tokens";

class MemoryStorage implements KeyValueStorage {
  values = new Map<string, string>();
  writes: string[] = [];
  getItem(key: string) {
    return this.values.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    this.writes.push(`${key}=${value}`);
    this.values.set(key, value);
  }
  removeItem(key: string) {
    this.values.delete(key);
  }
}

const NOW = Date.parse("2026-01-01T00:00:00Z");
const iso = (offsetMs: number) => new Date(NOW + offsetMs).toISOString();
const session = (name: string, accessValidMs = 60_000): Session => ({
  accessToken: `access-${name}`,
  accessTokenExpiresAt: iso(accessValidMs),
});

/**
 * A fake server and the browser's cookie jar, shared by every "tab": the refresh token is
 * the cookie's value, single-use, and — like the real server — sending a spent one revokes
 * the whole family, so every later refresh fails too.
 */
function cookieServer(delayMs = 5) {
  const jar = { cookie: "refresh-0" as string | null };
  const used = new Set<string>();
  let revoked = false;
  let generation = 0;
  const sent: string[] = [];
  const legacySent: string[] = [];
  const refresh = async (legacy?: string): Promise<RefreshOutcome> => {
    if (legacy) legacySent.push(legacy);
    const token = legacy ?? jar.cookie; // read when the request is sent
    if (token === null) return { ok: false, message: "no cookie" };
    sent.push(token);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    if (revoked || used.has(token)) {
      revoked = true;
      jar.cookie = null;
      return { ok: false, message: "refresh token reused: family revoked" };
    }
    used.add(token);
    generation += 1;
    jar.cookie = `refresh-${generation}`; // Set-Cookie, stored before the response resolves
    return { ok: true, session: session(`g${generation}`) };
  };
  return { refresh, jar, sent, legacySent, isRevoked: () => revoked };
}

/** An exclusive lock like navigator.locks.request, shared by several "tabs". */
function sharedLock(): LockFunction {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(_name: string, body: () => Promise<T>) => {
    const run = tail.then(body, body);
    tail = run.catch(() => undefined);
    return run;
  };
}

/** A BroadcastChannel between "tabs": a message reaches every other tab. */
function sharedChannel() {
  const tabs = new Set<(message: SessionAnnouncement) => void>();
  return (): SessionChannel => {
    let mine: ((message: SessionAnnouncement) => void) | null = null;
    return {
      post: (message) => {
        for (const listener of tabs) if (listener !== mine) listener(message);
      },
      listen: (listener) => {
        mine = listener;
        tabs.add(listener);
        return () => tabs.delete(listener);
      },
    };
  };
}

describe("TokenStore", () => {
  it("returns a fresh access token without refreshing", async () => {
    const server = cookieServer();
    const store = new TokenStore(server.refresh, undefined, () => NOW);
    store.set(session("a"));
    expect(await store.accessToken()).toBe("access-a");
    expect(server.sent).toEqual([]);
  });

  it("keeps tokens in memory only: nothing is ever written to storage", async () => {
    const local = new MemoryStorage();
    const server = cookieServer();
    const store = new TokenStore(server.refresh, undefined, () => NOW, [local]);
    await store.restore();
    store.set(session("signed-in", 1_000));
    await store.accessToken(); // refreshes
    expect(store.session?.accessToken).toBe("access-g2");
    expect(local.writes).toEqual([]);
    expect(JSON.stringify(store.session)).not.toContain("refresh-");
  });

  it("restores the session from the cookie on page load, and null without one", async () => {
    const server = cookieServer();
    const store = new TokenStore(server.refresh, undefined, () => NOW);
    expect((await store.restore())?.accessToken).toBe("access-g1");
    expect(server.sent).toEqual(["refresh-0"]);
    server.jar.cookie = null;
    const fresh = new TokenStore(server.refresh, undefined, () => NOW);
    expect(await fresh.restore()).toBeNull();
    expect(fresh.session).toBeNull();
  });

  it("shares one refresh between concurrent callers in a tab", async () => {
    const server = cookieServer();
    const store = new TokenStore(server.refresh, undefined, () => NOW);
    store.set(session("a", 1_000)); // inside the skew: stale
    const results = await Promise.all([store.accessToken(), store.accessToken(), store.accessToken()]);
    expect(results).toEqual(["access-g1", "access-g1", "access-g1"]);
    expect(server.sent).toEqual(["refresh-0"]);
  });

  it("never sends the same cookie twice across tabs (Web Lock), so the family survives", async () => {
    const server = cookieServer();
    const lock = sharedLock();
    const tabs = [1, 2, 3].map(() => new TokenStore(server.refresh, lock, () => NOW));
    for (const tab of tabs) tab.set(session("old", 1_000));
    const tokens = await Promise.all(tabs.flatMap((tab) => [tab.accessToken(), tab.accessToken()]));
    expect(tokens.every((token) => token?.startsWith("access-g"))).toBe(true);
    expect(new Set(server.sent).size).toBe(server.sent.length);
    expect(server.sent).toEqual(["refresh-0", "refresh-1", "refresh-2"]);
    expect(server.isRevoked()).toBe(false);
    // Pages opened at once restore one after the other, too.
    const opened = [1, 2].map(() => new TokenStore(server.refresh, lock, () => NOW));
    const restored = await Promise.all(opened.map((tab) => tab.restore()));
    expect(restored.every((value) => value !== null)).toBe(true);
    expect(server.isRevoked()).toBe(false);
  });

  it("without the lock two tabs would reuse the cookie (what the lock prevents)", async () => {
    const server = cookieServer();
    const tabs = [1, 2].map(() => new TokenStore(server.refresh, undefined, () => NOW));
    await Promise.all(tabs.map((tab) => tab.restore()));
    expect(server.sent).toEqual(["refresh-0", "refresh-0"]);
    expect(server.isRevoked()).toBe(true);
  });

  it("a forced refresh after a 401 reuses a rotation done meanwhile", async () => {
    const server = cookieServer();
    const store = new TokenStore(server.refresh, undefined, () => NOW);
    store.set(session("a"));
    await store.refreshNow("access-a");
    // A second caller that saw the old token must not rotate again.
    const again = await store.refreshNow("access-a");
    expect(again?.accessToken).toBe("access-g1");
    expect(server.sent).toEqual(["refresh-0"]);
  });

  it("signs out when the refresh is rejected, keeps the session when the server is unreachable", async () => {
    const rejected = new TokenStore(async () => ({ ok: false, message: "revoked" }), undefined, () => NOW);
    const seen: (Session | null)[] = [];
    rejected.subscribe((value) => seen.push(value));
    rejected.set(session("a", 0));
    expect(await rejected.accessToken()).toBeNull();
    expect(rejected.session).toBeNull();
    expect(seen.at(-1)).toBeNull();

    const offline = new TokenStore(async () => ({ ok: false, message: "offline", transient: true }), undefined, () => NOW);
    offline.set(session("b", 0));
    expect(await offline.accessToken()).toBeNull();
    expect(offline.session?.accessToken).toBe("access-b");
  });

  it("migrates a refresh token an earlier version stored: sent once, then deleted everywhere", async () => {
    const server = cookieServer();
    const lock = sharedLock();
    const local = new MemoryStorage();
    const sessionStore = new MemoryStorage();
    const legacy = { accessToken: "old-access", accessTokenExpiresAt: iso(-1), refreshToken: "refresh-0", refreshTokenExpiresAt: iso(1e9) };
    local.setItem(LEGACY_STORAGE_KEY, JSON.stringify(legacy));
    sessionStore.setItem(LEGACY_STORAGE_KEY, "not json");
    server.jar.cookie = null; // the old version never had the cookie
    // Two tabs of the new version open at once over the same storage.
    const tabs = [1, 2].map(() => new TokenStore(server.refresh, lock, () => NOW, [local, sessionStore]));
    const restored = await Promise.all(tabs.map((tab) => tab.restore()));
    expect(server.legacySent).toEqual(["refresh-0"]);
    expect(restored.map((value) => value?.accessToken)).toEqual(["access-g1", "access-g2"]);
    expect(local.getItem(LEGACY_STORAGE_KEY)).toBeNull();
    expect(sessionStore.getItem(LEGACY_STORAGE_KEY)).toBeNull();
    expect(server.isRevoked()).toBe(false);
  });

  it("announces sign-in and sign-out to the other tabs only", () => {
    const channel = sharedChannel();
    const server = cookieServer();
    const tabA = new TokenStore(server.refresh, undefined, () => NOW, [], channel());
    const tabB = new TokenStore(server.refresh, undefined, () => NOW, [], channel());
    const heardA: SessionAnnouncement[] = [];
    const heardB: SessionAnnouncement[] = [];
    tabA.onAnnouncement((message) => heardA.push(message));
    tabB.onAnnouncement((message) => heardB.push(message));
    tabA.announce("signed-in");
    tabB.announce("signed-out");
    expect(heardA).toEqual(["signed-out"]);
    expect(heardB).toEqual(["signed-in"]);
  });
});
