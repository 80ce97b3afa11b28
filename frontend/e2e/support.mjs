// What every browser end-to-end script needs: the repository's paths, a check list that
// counts failures, a free port, waiting for a child process's URL, and `ragql serve` on the
// embedded database with the superadmin the script signs in as.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const frontend = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const repo = resolve(frontend, "..");
export const ragql = process.env.RAGQL_BIN ?? join(repo, ".venv", "bin", "ragql");
export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** `log` with the seconds since start, `check` that logs ok/FAIL, and the failures so far. */
export function checkList(label) {
  const started = Date.now();
  const list = {
    failures: 0,
    log: (message) => console.log(`[${label} ${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${message}`),
    check(condition, message) {
      if (condition) list.log(`ok   ${message}`);
      else {
        list.failures += 1;
        list.log(`FAIL ${message}`);
      }
    },
  };
  return list;
}

export function freePort(host = "127.0.0.1") {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.listen(0, host, () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
    server.on("error", reject);
  });
}

/** Until `url` answers 2xx; fails early when `child` exits. */
export async function waitFor(url, child, what, timeoutMs = 240_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 300));
  }
  throw new Error(`${what} did not start in time`);
}

/** `ragql serve` on 127.0.0.1:`port` with its own data dir: the embedded database and the
 * in-process broker whatever the caller's shell has set, the hub offline, `admin` as the
 * superadmin, plus `env`. */
export function spawnRagql({ dataDir, port, admin, env = {}, ...options }) {
  const inherited = { ...process.env };
  delete inherited.DATABASE_URL;
  delete inherited.REDIS_URL;
  return spawn(ragql, ["serve", "--data-dir", dataDir, "--port", String(port), "--host", "127.0.0.1"], {
    cwd: repo,
    env: {
      ...inherited,
      SUPERADMIN_EMAIL: admin.email,
      SUPERADMIN_PASSWORD: admin.password,
      HF_HUB_OFFLINE: "1",
      TRANSFORMERS_OFFLINE: "1",
      ...env,
    },
    ...options,
  });
}
