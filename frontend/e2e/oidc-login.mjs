#!/usr/bin/env node
// End-to-end test of single sign-on: a real OpenID Provider (npm oidc-provider,
// tests/oidc_provider/provider.mjs) and a real `ragql serve` configured for it (fresh data
// dir), driven through Debian's chromium with playwright-core: the log-in page's
// "Sign in with …" button, the provider's log-in and consent pages, back to the SPA signed
// in as the new user, placed in the synced group (sees its model); a refused callback shows
// its reason on the log-in page. Run with `node e2e/oidc-login.mjs` (after `npm run build`).
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { chromium } from "playwright-core";
import { checkList, chromiumPath, freePort, frontend, ragql, repo, spawnRagql, waitFor } from "./support.mjs";

const providerScript = join(repo, "tests", "oidc_provider", "provider.mjs");
const ADMIN = { email: "admin@e2e.test", password: "e2e-Superadmin-pw-1" };
const CLIENT = { id: "ragql-e2e", secret: "ragql-e2e-client-secret-0123456789" };
const MODEL = "Staff handbook";

const checks = checkList("oidc e2e");
const { log, check } = checks;

async function graphql(base, query, variables, token) {
  const response = await fetch(`${base}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

/** The superadmin makes a group mirroring the IdP group "staff" and grants it a model. */
async function prepare(base) {
  const login = await graphql(
    base,
    "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { ... on AuthPayload { accessToken } } }",
    { e: ADMIN.email, p: ADMIN.password },
  );
  const token = login.logIn.accessToken;
  const group = await graphql(
    base,
    'mutation { createGroup(name: "Staff", externalName: "staff") { ... on AccessGroup { id } } }',
    {},
    token,
  );
  const model = await graphql(
    base,
    `mutation { createModel(input: { name: "${MODEL}" }) { __typename ... on Model { id } } }`,
    {},
    token,
  );
  const modelId = model.createModel.id;
  if (!modelId) throw new Error(`createModel failed: ${JSON.stringify(model)}`);
  await graphql(
    base,
    "mutation($m: UUID!, $g: UUID!) { grantModelAccess(modelId: $m, groupId: $g) { __typename } }",
    { m: modelId, g: group.createGroup.id },
    token,
  );
}

async function main() {
  for (const [path, hint] of [
    [ragql, "run `make install` first"],
    [chromiumPath, "apt-get install chromium"],
    [join(repo, "tests", "oidc_provider", "node_modules", "oidc-provider"), "run `make tests/oidc_provider/node_modules/.installed`"],
    [join(frontend, "dist", "index.html"), "run `npm run build` first"],
  ]) {
    if (!existsSync(path)) throw new Error(`${path} not found: ${hint}`);
  }
  const dataDir = mkdtempSync(join(tmpdir(), "ragql-oidc-e2e-data-"));
  const accounts = join(dataDir, "..", `oidc-e2e-accounts-${process.pid}.json`);
  const port = await freePort("127.0.0.1");
  const base = `http://127.0.0.1:${port}`;
  const issuer = `http://127.0.0.2:${await freePort("127.0.0.2")}`;
  writeFileSync(
    accounts,
    JSON.stringify({ olivia: { email: "olivia@e2e.test", email_verified: true, name: "Olivia Ortiz", groups: ["staff"] } }),
  );
  const children = [];
  let browser;
  try {
    const provider = spawn(process.execPath, [providerScript], {
      cwd: dirname(providerScript),
      env: {
        PATH: process.env.PATH,
        OIDC_TEST_ISSUER: issuer,
        OIDC_TEST_CLIENTS: JSON.stringify([
          { client_id: CLIENT.id, client_secret: CLIENT.secret, redirect_uris: [`${base}/auth/oidc/callback`] },
        ]),
        OIDC_TEST_ACCOUNTS: accounts,
      },
      stdio: "ignore",
    });
    children.push(provider);
    await waitFor(`${issuer}/.well-known/openid-configuration`, provider, "the OpenID Provider", 30_000);
    const server = spawnRagql({
      dataDir,
      port,
      admin: ADMIN,
      env: {
        OIDC_ISSUER_URL: issuer,
        OIDC_CLIENT_ID: CLIENT.id,
        OIDC_CLIENT_SECRET: CLIENT.secret,
        OIDC_DISPLAY_NAME: "Acme SSO",
      },
      stdio: ["ignore", "inherit", "inherit"],
    });
    children.push(server);
    log(`ragql serve on ${base}, OpenID Provider at ${issuer}`);
    await waitFor(`${base}/healthz`, server, "ragql serve");
    await prepare(base);

    browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
    const page = await browser.newPage();
    await page.goto(`${base}/login`);
    const button = page.getByRole("button", { name: "Sign in with Acme SSO" });
    const offered = await button.waitFor({ timeout: 10_000 }).then(() => true, () => false);
    check(offered, 'the log-in page offers "Sign in with Acme SSO"');
    mkdirSync(join(frontend, "test-results"), { recursive: true });
    await page.screenshot({ path: join(frontend, "test-results", "oidc-login-page.png") });
    await button.click();
    // The provider's development log-in page, then its consent page.
    await page.locator('input[name="login"]').waitFor({ timeout: 15_000 });
    check(page.url().startsWith(issuer), "the browser is at the identity provider");
    await page.locator('input[name="login"]').fill("olivia");
    await page.locator('input[name="password"]').fill("any password");
    await page.locator('button[type="submit"]').click();
    await page.locator('input[name="prompt"][value="consent"]').waitFor({ state: "attached", timeout: 15_000 });
    await page.locator('button[type="submit"]').click();
    const signedIn = await page
      .getByRole("button", { name: "Log out" })
      .waitFor({ timeout: 20_000 })
      .then(() => true, () => false);
    check(signedIn, "back in the app, signed in");
    check(!page.url().includes("#"), `the one-time code is gone from the address bar (${page.url()})`);
    const text = await page.locator("body").innerText();
    check(text.includes("Olivia Ortiz"), "the new user's name (from the IdP's name claim) is shown");
    const offeredModel = await page
      .locator("option", { hasText: MODEL })
      .waitFor({ state: "attached", timeout: 20_000 })
      .then(() => true, () => false);
    check(offeredModel, `the synced group's model "${MODEL}" is offered`);
    await page.screenshot({ path: join(frontend, "test-results", "oidc-signed-in.png") });

    // A callback that is not the end of this browser's flow: refused, with its reason on the page.
    const other = await browser.newPage();
    await other.goto(`${base}/auth/oidc/callback?code=forged&state=forged`);
    const alert = other.getByRole("alert");
    const shown = await alert.waitFor({ timeout: 10_000 }).then(() => alert.innerText(), () => "");
    check(/could not be verified/.test(shown), `a forged callback shows its reason on the log-in page (${shown})`);
    check(!other.url().includes("#"), "the error fragment is gone from the address bar");
  } finally {
    if (browser) await browser.close();
    for (const child of children.reverse()) {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((resolveExit) => {
          const timer = setTimeout(() => {
            child.kill("SIGKILL");
            resolveExit();
          }, 30_000);
          child.once("exit", () => {
            clearTimeout(timer);
            resolveExit();
          });
        });
      }
    }
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(accounts, { force: true });
  }
  log(checks.failures ? `${checks.failures} check(s) failed` : "all checks passed");
  process.exit(checks.failures ? 1 : 0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
