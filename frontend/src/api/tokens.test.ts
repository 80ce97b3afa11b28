import { describe, expect, it } from "vitest";
import { TokenStore, type KeyValueStorage, type LockFunction, type RefreshOutcome, type Session } from "./tokens";

class MemoryStorage implements KeyValueStorage {
  values = new Map<string, string>();
  getItem(key: string) {
    return this.values.get(key) ?? null;
  }
  setItem(key: string, value: string) {
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
  refreshToken: `refresh-${name}`,
  refreshTokenExpiresAt: iso(86_400_000),
});

/** A fake server whose refresh tokens work exactly once, like the real one. */
function rotatingServer(delayMs = 5) {
  const used = new Set<string>();
  let generation = 0;
  const calls: string[] = [];
  const refresh = async (token: string): Promise<RefreshOutcome> => {
    calls.push(token);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    if (used.has(token)) return { ok: false, message: "already used" };
    used.add(token);
    generation += 1;
    return { ok: true, session: session(`g${generation}`) };
  };
  return { refresh, calls };
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

describe("TokenStore", () => {
  it("returns a fresh access token without refreshing", async () => {
    const storage = new MemoryStorage();
    const server = rotatingServer();
    const store = new TokenStore(storage, server.refresh, undefined, () => NOW);
    store.set(session("a"));
    expect(await store.accessToken()).toBe("access-a");
    expect(server.calls).toEqual([]);
  });

  it("shares one refresh between concurrent callers in a tab", async () => {
    const storage = new MemoryStorage();
    const server = rotatingServer();
    const store = new TokenStore(storage, server.refresh, undefined, () => NOW);
    store.set(session("a", 1_000)); // inside the skew: stale
    const results = await Promise.all([store.accessToken(), store.accessToken(), store.accessToken()]);
    expect(results).toEqual(["access-g1", "access-g1", "access-g1"]);
    expect(server.calls).toEqual(["refresh-a"]);
    expect(store.session?.refreshToken).toBe("refresh-g1");
  });

  it("never sends the same refresh token twice across tabs sharing storage", async () => {
    const storage = new MemoryStorage();
    const server = rotatingServer();
    const lock = sharedLock();
    const tabA = new TokenStore(storage, server.refresh, lock, () => NOW);
    const tabB = new TokenStore(storage, server.refresh, lock, () => NOW);
    tabA.set(session("a", 1_000));
    const [a, b] = await Promise.all([tabA.accessToken(), tabB.accessToken()]);
    expect(a).toBe("access-g1");
    expect(b).toBe("access-g1");
    expect(server.calls).toEqual(["refresh-a"]);
  });

  it("a forced refresh after a 401 reuses a rotation done meanwhile", async () => {
    const storage = new MemoryStorage();
    const server = rotatingServer();
    const store = new TokenStore(storage, server.refresh, undefined, () => NOW);
    store.set(session("a"));
    await store.refreshNow("refresh-a");
    // A second caller that saw the old token must not rotate again.
    const again = await store.refreshNow("refresh-a");
    expect(again?.accessToken).toBe("access-g1");
    expect(server.calls).toEqual(["refresh-a"]);
  });

  it("signs out when the refresh token is rejected", async () => {
    const storage = new MemoryStorage();
    const store = new TokenStore(storage, async () => ({ ok: false, message: "revoked" }), undefined, () => NOW);
    const seen: (Session | null)[] = [];
    store.subscribe((value) => seen.push(value));
    store.set(session("a", 0));
    expect(await store.accessToken()).toBeNull();
    expect(store.session).toBeNull();
    expect(seen.at(-1)).toBeNull();
  });
});
