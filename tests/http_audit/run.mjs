// The graphql-http GraphQL-over-HTTP audit suite (serverAudits) against a real `ragql serve`
// on a fresh data dir and its own port, plus the draft's requirements the suite does not check.
// Prints one line per audit and exits non-zero when any MUST or SHOULD fails.
//
//   node tests/http_audit/run.mjs            (RAGQL=path/to/ragql to use another binary)
//   node tests/http_audit/run.mjs --url URL  (audit a server that is already running)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serverAudits } from 'graphql-http';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const GRAPHQL_RESPONSE = 'application/graphql-response+json';

// Audits whose (older) text the current draft overrides, each with the draft check that
// asserts the draft's behaviour instead. If such an audit fails while its draft check passes,
// it is reported as `draft` (not a failure).
//   80D8 "SHOULD assume application/json content-type when accept is missing": the draft's
//   "Legacy watershed" says that from 2025-01-01 a request *without* an Accept header SHOULD
//   be treated as if it had `Accept: application/graphql-response+json`
//   (https://graphql.github.io/graphql-over-http/draft/). Node's fetch adds `Accept: */*` to
//   every request, so through fetch 80D8 really exercises `*/*` (answered application/json,
//   as 47DE asks) and passes; DRAFT-ACCEPT-MISSING sends no Accept header at all (node:http).
const SUPERSEDED_BY_DRAFT = { '80D8': 'DRAFT-ACCEPT-MISSING' };

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function waitHealthy(base, child, logPath, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`ragql serve exited early (${child.exitCode}):\n${readFileSync(logPath, 'utf8')}`);
    }
    try {
      const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`ragql serve did not become healthy:\n${readFileSync(logPath, 'utf8')}`);
}

// A request with exactly these headers (fetch would add Accept and others).
function rawRequest(url, { method = 'POST', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

// The draft's requirements that serverAudits does not test (or tests more loosely).
function draftChecks(url) {
  const json = { 'content-type': 'application/json' };
  const query = JSON.stringify({ query: '{ __typename }' });
  return [
    [
      'DRAFT-ACCEPT-MISSING',
      'SHOULD treat a request without Accept as accepting application/graphql-response+json (watershed; overrides 80D8)',
      async () => {
        const res = await rawRequest(url, { headers: json, body: query });
        expect(res.status === 200, `status ${res.status}`);
        expect(String(res.headers['content-type']).startsWith(GRAPHQL_RESPONSE), `content-type ${res.headers['content-type']}`);
      },
    ],
    [
      'DRAFT-406',
      'SHOULD (RECOMMENDED) answer 406 when Accept lists no supported media type',
      async () => {
        const res = await rawRequest(url, { headers: { ...json, accept: 'text/plain' }, body: query });
        expect(res.status === 406, `status ${res.status}`);
      },
    ],
    [
      'DRAFT-GET-MUTATION-405',
      'MUST answer a mutation over GET with 405 (9C48 only checks 4xx)',
      async () => {
        const target = new URL(url);
        target.searchParams.set('query', 'mutation { __typename }');
        const res = await fetch(target, { headers: { accept: GRAPHQL_RESPONSE } });
        expect(res.status === 405, `status ${res.status}`);
      },
    ],
    [
      'DRAFT-METHODS-405',
      'SHOULD answer other methods (PUT, PATCH, DELETE) with 405 and Allow: GET, POST',
      async () => {
        for (const method of ['PUT', 'PATCH', 'DELETE']) {
          const res = await fetch(url, { method, headers: { ...json, accept: GRAPHQL_RESPONSE }, body: query });
          expect(res.status === 405, `${method}: status ${res.status}`);
          expect(res.headers.get('allow') === 'GET, POST', `${method}: allow ${res.headers.get('allow')}`);
        }
      },
    ],
    [
      'DRAFT-EMPTY-OPERATION-NAME',
      'MUST treat an empty operationName GET parameter as absent',
      async () => {
        const target = new URL(url);
        target.searchParams.set('query', '{ __typename }');
        target.searchParams.set('operationName', '');
        const res = await fetch(target, { headers: { accept: GRAPHQL_RESPONSE } });
        expect(res.status === 200, `status ${res.status}`);
      },
    ],
    [
      'DRAFT-GET-OPERATION',
      'SHOULD NOT execute when GetOperation() fails (two operations, no operationName): 400 without data',
      async () => {
        const res = await fetch(url, {
          method: 'POST',
          headers: { ...json, accept: GRAPHQL_RESPONSE },
          body: JSON.stringify({ query: 'query A { __typename } query B { __typename }' }),
        });
        expect(res.status === 400, `status ${res.status}`);
        const body = await res.json();
        expect(!('data' in body) && body.errors?.length, `body ${JSON.stringify(body)}`);
      },
    ],
  ];
}

async function audit(url) {
  const results = [];
  for (const { fn } of serverAudits({ url, fetchFn: fetch })) {
    results.push(await fn());
  }
  for (const [id, name, fn] of draftChecks(url)) {
    try {
      await fn();
      results.push({ id, name, status: 'ok' });
    } catch (error) {
      results.push({ id, name, status: name.startsWith('MUST') ? 'error' : 'warn', reason: error.message });
    }
  }
  for (const result of results) {
    const draftId = SUPERSEDED_BY_DRAFT[result.id];
    const draft = draftId && results.find((r) => r.id === draftId);
    if (result.status !== 'ok' && draft?.status === 'ok') {
      result.reason = `${result.reason}; superseded by the draft, asserted by ${draftId} instead`;
      result.status = 'draft';
    }
  }
  let failed = 0;
  for (const r of results) {
    const line = `${r.status.padEnd(6)} ${r.id}  ${r.name}`;
    console.log(r.reason && r.status !== 'ok' ? `${line}\n         -> ${r.reason}` : line);
    if (r.status === 'error' || r.status === 'warn') failed += 1;
  }
  const counts = {};
  for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
  const passed = results.length - failed;
  console.log(`graphql-http audit: ${JSON.stringify(counts)} (MAY items that fail are notices)`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed;
}

async function main() {
  const urlFlag = process.argv.indexOf('--url');
  if (urlFlag !== -1) {
    process.exitCode = (await audit(process.argv[urlFlag + 1])) ? 1 : 0;
    return;
  }
  const ragql = process.env.RAGQL ?? path.join(repo, '.venv', 'bin', 'ragql');
  const root = mkdtempSync(path.join(os.tmpdir(), 'ragql-http-audit-'));
  const port = await freePort();
  const logPath = path.join(root, 'serve.log');
  const log = openSync(logPath, 'w');
  const child = spawn(ragql, ['serve', '--data-dir', path.join(root, 'data'), '--port', String(port)], {
    stdio: ['ignore', log, log],
    env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' },
  });
  const base = `http://127.0.0.1:${port}`;
  let failed = 1;
  try {
    await waitHealthy(base, child, logPath, 180_000);
    failed = await audit(`${base}/graphql`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 30_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      if (child.exitCode !== null) resolve();
    });
    if (failed) console.log(`server log: ${logPath}`);
    else rmSync(root, { recursive: true, force: true });
  }
  process.exitCode = failed ? 1 : 0;
}

await main();
