#!/usr/bin/env node
// End-to-end test: a real `ragql serve` (embedded database, fresh data dir) driven through
// Debian's chromium with playwright-core. Run with `npm run test:e2e` (builds dist/ if missing).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { checkAdminModelsOnPhone, checkAuditLogNames, checkExtractiveSettings, checkResumeAttachAndPhone } from "./chat-resume.mjs";
import { checkLiveModelList } from "./live-access.mjs";
import { checkAccessTokens } from "./access-tokens.mjs";
import { checkUsagePage } from "./usage.mjs";
import { checkList, chromiumPath, freePort, frontend, ragql, repo, spawnRagql, waitFor } from "./support.mjs";

const results = join(frontend, "test-results");
const python = join(repo, ".venv", "bin", "python");
// RAGQL_E2E_PDF: another copy named R-intro.pdf (e.g. its first pages) for a quicker local run.
const pdf = process.env.RAGQL_E2E_PDF ?? resolve(repo, "..", "shared", "data", "docs", "R-intro.pdf");
const ADMIN = { email: "admin@e2e.test", password: "e2e-Superadmin-pw-1" };
const READER = { email: "reader@e2e.test", password: "Sunny-meadow-42", name: "Reader" };
const OUTSIDER = { email: "outsider@e2e.test", password: "Quiet-harbor-77", name: "Outsider" };
const MODEL = "R manuals";
// A document carrying a Markdown link: the answer quoting it must show the target, never link to it.
const PHISH_URL = "https://evil.example/phish";
const PHISH_DOC = {
  name: "account-recovery.md",
  mimeType: "text/markdown",
  buffer: Buffer.from(
    "# Zebra archive account recovery\n\n" +
      `When the zebra archive session has expired, [log in again](${PHISH_URL}) to restore access to the zebra archive.\n\n` +
      "Zebra archive volumes are catalogued by year and by the colour of their stripes.\n",
  ),
};
const GROUP = "R readers";
// A small CSV: a question about one of its rows is answered with that row as a table, and the
// citation dialog shows the cited rows as a table too (not only the whole file to download).
const CSV_DOC = {
  name: "parts_list.csv",
  mimeType: "text/csv",
  buffer: Buffer.from(
    "part_number,description,price,supplier\n" +
      "QX-7731,hex bolt,0.40,Acme\n" +
      "QX-7732,spring washer,0.05,Acme\n" +
      "ZZ-1000,hex nut,0.10,Bolt and Co\n",
  ),
};

const checks = checkList("e2e");
const { log, check } = checks;

/** The text of one PDF page (1-based), read with the server's own pypdf. */
function pdfPageText(path, page) {
  const script = "import sys, pypdf; print(pypdf.PdfReader(sys.argv[1]).pages[int(sys.argv[2]) - 1].extract_text())";
  const result = spawnSync(python, ["-c", script, path, String(page)], { encoding: "utf8" });
  return result.status === 0 ? result.stdout : "";
}
const normalize = (text) => text.replace(/[^a-z0-9]+/gi, " ").trim().toLowerCase();

async function logIn(page, base, user) {
  await page.goto(`${base}/login`);
  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("button", { name: "Log out" }).waitFor({ timeout: 15_000 });
}

async function signUp(page, base, user) {
  await page.goto(`${base}/signup`);
  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Display name").fill(user.name);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByRole("button", { name: "Log out" }).waitFor({ timeout: 15_000 });
}

/** Whether the locator becomes visible within `timeout` ms (a check, not a hard wait). */
async function visibleWithin(locator, timeout = 10_000) {
  return locator.waitFor({ state: "visible", timeout }).then(
    () => true,
    () => false,
  );
}

async function logOut(page) {
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("heading", { name: "Log in to ragql" }).waitFor({ timeout: 10_000 });
}

/** The session lives in an HttpOnly cookie: no script-readable storage holds a refresh token. */
async function checkSessionStorage(page, label) {
  const exposed = await page.evaluate(() => ({
    storage: [localStorage, sessionStorage].flatMap((store) =>
      Object.keys(store).filter((key) => /refresh|session/i.test(key) || /refresh/i.test(store.getItem(key) ?? "")),
    ),
    cookie: document.cookie,
  }));
  check(exposed.storage.length === 0, `${label}: no session or refresh token in localStorage/sessionStorage (${exposed.storage.join(", ")})`);
  check(!/ragql_refresh/.test(exposed.cookie), `${label}: the refresh cookie is not readable by scripts`);
}

/** The headers a browser gets: strict CSP, no framing, nosniff. */
async function checkHeaders(request, base) {
  const spa = await request.get(`${base}/`);
  const spaPolicy = spa.headers()["content-security-policy"] ?? "";
  check(
    /script-src 'self'(;|$)/.test(spaPolicy) && /frame-ancestors 'none'/.test(spaPolicy) && !/unsafe-inline/.test(spaPolicy),
    `the app is served with a strict CSP (${spaPolicy})`,
  );
  check(spa.headers()["x-frame-options"] === "DENY" && spa.headers()["x-content-type-options"] === "nosniff", "the app cannot be framed and is nosniff");
  const graphiql = await request.get(`${base}/graphql`, { headers: { Accept: "text/html" } });
  const graphiqlPolicy = graphiql.headers()["content-security-policy"] ?? "";
  check(/script-src [^;]*'sha256-/.test(graphiqlPolicy) && /frame-ancestors 'none'/.test(graphiqlPolicy), "GraphiQL has its own CSP (pinned scripts + hash)");
}

/** Debian's chromium, headless, with its own profile (a second profile is a second person). */
function launchBrowser(profileDir) {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
    viewport: { width: 1280, height: 860 },
  });
}

async function main() {
  if (!existsSync(ragql)) throw new Error(`${ragql} not found: run \`make install\` first`);
  if (!existsSync(chromiumPath)) throw new Error(`${chromiumPath} not found: apt-get install chromium`);
  if (!existsSync(join(frontend, "dist", "index.html"))) {
    log("dist/ missing: building");
    const build = spawnSync("npm", ["run", "build"], { cwd: frontend, stdio: "inherit" });
    if (build.status !== 0) throw new Error("npm run build failed");
  }
  mkdirSync(results, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), "ragql-e2e-data-"));
  const profileDir = mkdtempSync(join(tmpdir(), "ragql-e2e-chromium-"));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  log(`starting ragql serve on ${base} (data dir ${dataDir})`);
  const server = spawnRagql({
    dataDir,
    port,
    admin: ADMIN,
    env: {
      KEEP_ORIGINAL_FILES: "true",
      SIGNUP_ENABLED: "true",
      // One-minute access tokens: the run outlives several, so silent refresh is exercised.
      ACCESS_TOKEN_MINUTES: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const serverLog = [];
  const keep = (chunk) => {
    serverLog.push(chunk.toString());
    if (serverLog.length > 400) serverLog.shift();
  };
  server.stdout.on("data", keep);
  server.stderr.on("data", keep);

  let context;
  try {
    await waitFor(`${base}/healthz`, server, "ragql serve");
    log("server healthy");
    context = await launchBrowser(profileDir);
    const page = context.pages()[0] ?? (await context.newPage());
    const consoleErrors = [];
    const cspViolations = [];
    page.on("pageerror", (error) => consoleErrors.push(String(error)));
    // Any CSP violation fails the run: the event from inside the page, and Chromium's console report.
    await context.exposeBinding("__reportCspViolation", (_source, violation) => cspViolations.push(violation));
    await context.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (event) =>
        window.__reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI || "inline"} at ${event.sourceFile}:${event.lineNumber}`),
      );
    });
    page.on("console", (message) => {
      if (message.type() === "error" && /Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });
    await checkHeaders(page.request, base);
    // The listener works: an injected inline script is blocked by the app's CSP and reported.
    await page.goto(`${base}/login`);
    await page.evaluate(() => {
      const script = document.createElement("script");
      script.textContent = "window.__inlineScriptRan = true";
      document.head.append(script);
    });
    await page.waitForTimeout(300);
    const inlineRan = await page.evaluate(() => window.__inlineScriptRan === true);
    check(!inlineRan && cspViolations.some((violation) => /script-src/.test(violation)), `an injected inline script is blocked and reported (${cspViolations.length} violation(s))`);
    cspViolations.length = 0;
    page.on("dialog", (dialog) => void dialog.accept());

    // Two people sign up; neither has access to anything yet.
    await signUp(page, base, READER);
    // The model list loads after the sign-up lands: wait for it rather than sampling once.
    check(
      await visibleWithin(page.getByRole("heading", { name: "No models yet" })),
      "a new user without access sees the empty state",
    );
    await checkSessionStorage(page, "after sign-up");
    const refreshCookie = (await context.cookies(`${base}/graphql`)).find((cookie) => cookie.name === "ragql_refresh");
    check(
      !!refreshCookie?.value && refreshCookie.httpOnly && refreshCookie.sameSite === "Strict" && refreshCookie.path === "/graphql",
      `the refresh token is an HttpOnly, SameSite=Strict, Path=/graphql cookie (${JSON.stringify(refreshCookie && { ...refreshCookie, value: "…" })})`,
    );
    // A reload forgets the in-memory access token; the session comes back from the cookie.
    await page.reload();
    check(await visibleWithin(page.getByRole("button", { name: "Log out" }), 15_000), "a reload restores the session from the HttpOnly cookie");
    await checkSessionStorage(page, "after reload");
    await logOut(page);
    check(!(await context.cookies(`${base}/graphql`)).some((cookie) => cookie.name === "ragql_refresh" && cookie.value), "logging out clears the refresh cookie");
    await signUp(page, base, OUTSIDER);
    await logOut(page);

    // The superadmin: group with the reader, an EXTRACTIVE model granted to the group.
    await logIn(page, base, ADMIN);
    await page.getByRole("link", { name: "Admin", exact: true }).click();
    await page.getByRole("link", { name: "Groups" }).click();
    await page.getByLabel("Group name").fill(GROUP);
    await page.getByRole("button", { name: "Create group" }).click();
    const groupCard = page.locator(`[data-group="${GROUP}"]`);
    await groupCard.waitFor();
    check(true, "superadmin created a group");
    await groupCard.getByLabel("Add a member (search by email)").fill(READER.email);
    await groupCard.getByRole("button", { name: "Find" }).click();
    await groupCard.getByRole("button", { name: `Add ${READER.email} to ${GROUP}` }).click();
    await groupCard.getByText("1 member").waitFor();
    check(true, "reader added to the group");
    // Issue 14: admins see and set which identity-provider group a group mirrors.
    const sync = groupCard.getByTestId("group-sync");
    check(await visibleWithin(sync.getByText("Not synced with the identity provider")), "an unsynced group says so");
    await sync.getByLabel("Identity provider group").fill("ragql-readers");
    await sync.getByRole("button", { name: "Save" }).click();
    check(
      await visibleWithin(groupCard.getByText(/Synced with the identity provider's group ragql-readers .* last sync not yet/)),
      "a synced group names its identity-provider group and its last sync",
    );

    await page.getByRole("link", { name: "Models" }).click();
    await page.getByLabel("Model name").fill(MODEL);
    await page.getByLabel("Provider").selectOption("EXTRACTIVE");
    await page.getByRole("button", { name: "Create model" }).click();
    await page.getByRole("heading", { name: MODEL }).waitFor();
    check(true, "superadmin created an EXTRACTIVE model");
    await page.getByLabel("Grant to a group").selectOption({ label: GROUP });
    await page.getByRole("button", { name: "Grant group" }).click();
    await page.getByText(`Access granted to group ${GROUP}.`).waitFor();
    check(await visibleWithin(page.locator(".member-list").getByText(GROUP)), "model granted to the group");
    // Issue 16: a grant and a revoke reach the outsider's already-open chat page.
    await checkLiveModelList(page, { launchBrowser, base, user: OUTSIDER, model: MODEL, check, results, logIn });
    // Issue 16: settings that do not apply to EXTRACTIVE are hidden; the models table at phone width.
    await checkExtractiveSettings(page, { check });
    await page.getByRole("link", { name: "Models", exact: true }).click();
    await checkAdminModelsOnPhone(page, { check, results, model: MODEL });
    await checkUsagePage(page, { base, check, results, admin: ADMIN, user: READER.email, group: GROUP, model: MODEL });
    await checkAuditLogNames(page, { check, model: MODEL, group: GROUP, member: READER.email });
    await page.getByRole("table", { name: "Models" }).getByRole("link", { name: MODEL }).click();
    await page.getByRole("heading", { name: MODEL }).waitFor();

    await page.getByRole("link", { name: /^Documents/ }).click();
    await page.getByRole("heading", { name: new RegExp(`Documents — ${MODEL}`) }).waitFor();
    const hasPdf = existsSync(pdf);
    if (!hasPdf) {
      log(`SKIP upload and chat: ${pdf} is absent`);
    } else {
      await page.getByTestId("document-file-input").setInputFiles(pdf);
      const uploadBar = page.getByRole("progressbar", { name: "Upload of R-intro.pdf" });
      await uploadBar.waitFor({ timeout: 10_000 }).catch(() => undefined);
      const card = page.locator('[data-document="R-intro.pdf"]');
      await card.waitFor({ timeout: 60_000 });
      check(true, "upload accepted; the document appears with a status");
      const seen = new Set();
      const seenPercents = [];
      const deadline = Date.now() + 600_000;
      let status = "";
      let shotWhileWorking = false;
      while (Date.now() < deadline) {
        status = (await card.getAttribute("data-status")) ?? "";
        seen.add(status);
        const bar = card.getByRole("progressbar");
        if (await bar.count()) seenPercents.push(Number(await bar.first().getAttribute("aria-valuenow")));
        if (status === "READY" || status === "FAILED") break;
        if (!shotWhileWorking && ["EMBEDDING", "STORING"].includes(status)) {
          shotWhileWorking = true;
          await page.screenshot({ path: join(results, "documents-ingesting.png"), fullPage: true });
        }
        await page.waitForTimeout(500);
      }
      log(`ingestion statuses seen: ${[...seen].join(" → ")}; progress values: ${[...new Set(seenPercents)].join(", ")}`);
      check(status === "READY", `the document reached READY (last status ${status})`);
      const finalBar = card.getByRole("progressbar");
      check((await finalBar.getAttribute("aria-valuenow")) === "100", "its progress bar reads 100%");
      await page.getByTestId("document-file-input").setInputFiles(PHISH_DOC);
      const phishCard = page.locator(`[data-document="${PHISH_DOC.name}"]`);
      await phishCard.waitFor({ timeout: 60_000 });
      let phishStatus = "";
      const phishDeadline = Date.now() + 180_000;
      while (Date.now() < phishDeadline) {
        phishStatus = (await phishCard.getAttribute("data-status")) ?? "";
        if (phishStatus === "READY" || phishStatus === "FAILED") break;
        await page.waitForTimeout(500);
      }
      check(phishStatus === "READY", `the Markdown document with a link reached READY (${phishStatus})`);
      await page.getByTestId("document-file-input").setInputFiles(CSV_DOC);
      const csvCard = page.locator(`[data-document="${CSV_DOC.name}"]`);
      await csvCard.waitFor({ timeout: 60_000 });
      let csvStatus = "";
      const csvDeadline = Date.now() + 180_000;
      while (Date.now() < csvDeadline) {
        csvStatus = (await csvCard.getAttribute("data-status")) ?? "";
        if (csvStatus === "READY" || csvStatus === "FAILED") break;
        await page.waitForTimeout(500);
      }
      check(csvStatus === "READY", `the CSV reached READY (${csvStatus})`);
      await page.screenshot({ path: join(results, "documents.png"), fullPage: true });
      log("screenshot test-results/documents.png");
    }
    await logOut(page);

    // The reader (granted through the group) asks a question.
    await logIn(page, base, READER);
    const modelSelect = page.getByLabel("Model");
    await modelSelect.waitFor();
    // The options arrive with the model list: wait for them rather than sampling once.
    await modelSelect.locator("option", { hasText: MODEL }).waitFor({ state: "attached", timeout: 15_000 }).catch(() => undefined);
    const options = await modelSelect.locator("option").allTextContents();
    check(options.includes(MODEL), `the reader can pick the model (options: ${options.join(", ")})`);
    if (hasPdf) {
      // Record every length the answer's text takes as the DOM changes: more than one means it streamed in.
      await page.evaluate(() => {
        window.__answerLengths = [];
        new MutationObserver(() => {
          const markdown = [...document.querySelectorAll("article.message.assistant")].pop()?.querySelector(".markdown");
          if (markdown) window.__answerLengths.push(markdown.textContent.length);
        }).observe(document.body, { subtree: true, childList: true, characterData: true });
      });
      await page.getByLabel("Your question").fill("What is R and how do I start an R session?");
      await page.getByRole("button", { name: "Send" }).click();
      const answer = page.locator('article.message.assistant').last();
      await answer.waitFor({ timeout: 30_000 });
      // Watch the answer grow while it streams.
      const lengths = [];
      let streamedStatus = "";
      const until = Date.now() + 120_000;
      while (Date.now() < until) {
        streamedStatus = (await answer.getAttribute("data-status")) ?? "";
        lengths.push((await answer.locator(".markdown").textContent().catch(() => ""))?.length ?? 0);
        if (!["STREAMING", "PENDING"].includes(streamedStatus)) break;
        await page.waitForTimeout(100);
      }
      const observed = await page.evaluate(() => window.__answerLengths);
      const growth = new Set([...lengths, ...observed].filter((length) => length > 0)).size;
      log(`answer status ${streamedStatus}; distinct text lengths seen while it arrived: ${growth}`);
      check(streamedStatus === "COMPLETE", "the answer completed");
      check(growth >= 2, "the answer streamed in (its text grew in several steps)");
      const chips = answer.locator("button.cite");
      const chipCount = await chips.count();
      check(chipCount > 0, `the answer has citation chips (${chipCount})`);
      if (chipCount > 0) {
        await chips.first().click();
        const dialog = page.getByRole("dialog");
        await dialog.waitFor();
        const title = (await dialog.locator("h2").textContent()) ?? "";
        const location = (await dialog.locator(".source-location").textContent()) ?? "";
        const snippet = (await dialog.locator(".snippet").textContent()) ?? "";
        const linkLocator = dialog.getByRole("link", { name: /Open the original/ });
        await linkLocator.waitFor({ timeout: 10_000 }).catch(() => undefined);
        const link = await linkLocator.getAttribute("href", { timeout: 1_000 }).catch(() => null);
        log(`citation: ${title} | ${location} | link ${link}`);
        check(/R[- ]intro|introduction to r/i.test(title), "the citation names the document");
        const pageNumber = Number((link ?? "").match(/#page=(\d+)/)?.[1] ?? location.match(/(\d+)/)?.[1] ?? NaN);
        check(Number.isFinite(pageNumber), `the citation shows a page (${pageNumber})`);
        check(!!link && link.includes("#page="), "the citation links to the original at its page");
        if (Number.isFinite(pageNumber)) {
          const words = normalize(snippet.replace(/…|\.\.\./g, " ")).split(" ").filter((word) => word.length > 3).slice(0, 8);
          const pages = [pageNumber, pageNumber + 1].map((number) => normalize(pdfPageText(pdf, number))).join(" ");
          const found = words.filter((word) => pages.includes(word)).length;
          check(words.length > 0 && found >= Math.ceil(words.length * 0.75), `the snippet's words are on page ${pageNumber} of the PDF (${found}/${words.length})`);
        }
        if (link) {
          const response = await page.request.get(new URL(link, base).toString());
          check(response.ok() && (response.headers()["content-type"] ?? "").includes("pdf"), `the original file opens (HTTP ${response.status()})`);
          const headers = response.headers();
          check(
            /^sandbox;/.test(headers["content-security-policy"] ?? "") && headers["x-content-type-options"] === "nosniff" && /^inline;/.test(headers["content-disposition"] ?? ""),
            `the original is served inline with nosniff and a sandbox CSP (${headers["content-security-policy"]})`,
          );
          // Chromium's PDF viewer renders it under that CSP, at the cited page.
          const viewerPage = await context.newPage();
          await viewerPage.goto(new URL(link, base).toString(), { waitUntil: "load" });
          const viewer = await (async () => {
            for (let attempt = 0; attempt < 40; attempt += 1) {
              const frame = viewerPage.frames().find((candidate) => candidate.url().startsWith("chrome-extension://"));
              if (frame) return frame;
              await viewerPage.waitForTimeout(250);
            }
            return null;
          })();
          // The viewer loads the document after its own page: poll its page number.
          let shownPage = null;
          for (let attempt = 0; viewer && attempt < 40 && shownPage !== String(pageNumber); attempt += 1) {
            shownPage = await viewer.locator("input#pageSelector").inputValue({ timeout: 5_000 }).catch(() => null);
            if (shownPage !== String(pageNumber)) await viewerPage.waitForTimeout(250);
          }
          check(shownPage === String(pageNumber), `Chromium's PDF viewer shows the original at page ${pageNumber} under the sandbox CSP (shows ${shownPage})`);
          await viewerPage.screenshot({ path: join(results, "original-pdf.png") });
          await viewerPage.close();
        }
        await page.screenshot({ path: join(results, "chat-citation.png"), fullPage: true });
        await dialog.getByRole("button", { name: "Close" }).click();
      }
      // The source list tells sources apart (title, place, one-line preview) and marks the cited ones.
      const summary = (await answer.locator(".sources summary").textContent()) ?? "";
      const previews = await answer.locator(".sources .source-preview").count();
      const citedBadges = await answer.locator(".sources .source-cited").count();
      log(`sources: ${summary.replace(/\s+/g, " ")}; ${previews} previews, ${citedBadges} marked cited`);
      check(previews > 0 && citedBadges === new Set(await chips.allTextContents()).size, "the source list shows previews and marks the cited sources");
      check(!summary.includes("none cited"), "a cited answer's source list does not say none are cited");
      await page.screenshot({ path: join(results, "chat.png"), fullPage: true });
      log("screenshot test-results/chat.png");

      // An answer quoting a document's Markdown link shows the target as text, with no live link.
      // (The first question is now on the page as an article labelled "Your question" too.)
      await page.getByRole("textbox", { name: "Your question" }).fill("How do I restore access to the zebra archive when the session expired?");
      await page.getByRole("button", { name: "Send" }).click();
      const linkAnswer = page.locator("article.message.assistant").nth(1);
      await linkAnswer.waitFor({ timeout: 30_000 });
      let linkStatus = "";
      const linkUntil = Date.now() + 120_000;
      while (Date.now() < linkUntil) {
        linkStatus = (await linkAnswer.getAttribute("data-status")) ?? "";
        if (!["STREAMING", "PENDING"].includes(linkStatus)) break;
        await page.waitForTimeout(200);
      }
      const linkText = (await linkAnswer.locator(".markdown").textContent()) ?? "";
      log(`answer quoting the linked document: ${linkText.replace(/\s+/g, " ").slice(0, 240)}`);
      check(linkText.includes(`log in again (${PHISH_URL})`), "the answer shows the document's link as text with its target");
      const liveLinks = await page.locator(`a[href*="evil.example"], [href*="evil.example"]`).count();
      const anyAnswerLinks = await page.locator("article.message.assistant .markdown a").count();
      check(liveLinks === 0 && anyAnswerLinks === 0, `no live link to the document's target anywhere on the page (${liveLinks}, ${anyAnswerLinks} in answers)`);
      await page.screenshot({ path: join(results, "chat-link.png"), fullPage: true });

      // A question about a CSV row: the answer shows the row as a table, and so does its citation.
      await page.getByRole("textbox", { name: "Your question" }).fill("What is the price of part QX-7732?");
      await page.getByRole("button", { name: "Send" }).click();
      const csvAnswer = page.locator("article.message.assistant").nth(2);
      await csvAnswer.waitFor({ timeout: 30_000 });
      let csvAnswerStatus = "";
      const csvUntil = Date.now() + 120_000;
      while (Date.now() < csvUntil) {
        csvAnswerStatus = (await csvAnswer.getAttribute("data-status")) ?? "";
        if (!["STREAMING", "PENDING"].includes(csvAnswerStatus)) break;
        await page.waitForTimeout(200);
      }
      const answerRows = await csvAnswer.locator(".markdown table tbody tr").allTextContents();
      log(`CSV answer rows: ${answerRows.map((row) => row.replace(/\s+/g, " ")).join(" / ")}`);
      check(answerRows.length === 1 && /QX-7732/.test(answerRows[0]) && /0\.05/.test(answerRows[0]), "the CSV answer shows the matching row as a table");
      const csvChip = csvAnswer.locator("button.cite").first();
      if (await csvChip.count()) {
        await csvChip.click();
        const csvDialog = page.getByRole("dialog");
        await csvDialog.waitFor();
        const csvLocation = (await csvDialog.locator(".source-location").textContent()) ?? "";
        const headers = await csvDialog.locator("table.source-table thead th").allTextContents();
        const rows = await csvDialog.locator("table.source-table tbody tr").allTextContents();
        log(`CSV citation: ${csvLocation} | columns ${headers.join(", ")} | ${rows.length} rows`);
        check(/data rows? \d/.test(csvLocation), `the CSV citation says which data rows it is (${csvLocation})`);
        check(headers.join("|") === "Data row|part_number|description|price|supplier", "the CSV citation shows its columns as a table header");
        check(rows.some((row) => /^\s*2\s*QX-7732\s*spring washer\s*0\.05\s*Acme/.test(row)), "the CSV citation shows the cited row in a table with its data row number");
        await page.screenshot({ path: join(results, "chat-csv-citation.png"), fullPage: true });
        await csvDialog.getByRole("button", { name: "Close" }).click();
      } else {
        check(false, "the CSV answer cites its source");
      }
      await page.setViewportSize({ width: 390, height: 800 });
      await page.screenshot({ path: join(results, "chat-phone.png") });
      await page.setViewportSize({ width: 1280, height: 860 });
    }
    // Issue 16: an older chat is continued; an attachment shows in the conversation; phone-width composer.
    await checkResumeAttachAndPhone(page, { check, results, log });
    await logOut(page);

    // Someone without access never sees the model.
    await logIn(page, base, OUTSIDER);
    await page.getByRole("heading", { name: "No models yet" }).waitFor({ timeout: 15_000 });
    await checkSessionStorage(page, "outsider");
    // Issue 15: the Access tokens page (create, copy once, revoke) and the token on /v1.
    await checkAccessTokens(page, { base, check, results });
    // The page's access token is in its memory only: ask the API as the outsider from here.
    const outsiderLogin = await (
      await fetch(`${base}/graphql`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          query: "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { ... on AuthPayload { accessToken } } }",
          variables: { e: OUTSIDER.email, p: OUTSIDER.password },
        }),
      })
    ).json();
    const outsiderModels = await (
      await fetch(`${base}/graphql`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${outsiderLogin?.data?.logIn?.accessToken}` },
        body: JSON.stringify({ query: "{ models(first: 100) { totalCount items { name } } }" }),
      })
    ).json();
    check(outsiderModels?.data?.models?.totalCount === 0, "a user without access cannot see the model (UI and API)");
    await logOut(page);
    check(consoleErrors.length === 0, `no uncaught page errors${consoleErrors.length ? `: ${consoleErrors.join(" | ")}` : ""}`);
    check(cspViolations.length === 0, `no Content-Security-Policy violations${cspViolations.length ? `: ${[...new Set(cspViolations)].join(" | ")}` : ""}`);
  } catch (error) {
    checks.failures += 1;
    log(`FAIL ${error?.stack ?? error}`);
    try {
      await context?.pages()[0]?.screenshot({ path: join(results, "failure.png"), fullPage: true });
      log("screenshot test-results/failure.png");
    } catch {
      // no page to capture
    }
    console.log("---- last server output ----\n" + serverLog.join("").split("\n").slice(-60).join("\n"));
  } finally {
    await context?.close().catch(() => undefined);
    try {
      process.kill(-server.pid, "SIGTERM");
    } catch {
      // already gone
    }
    await new Promise((resolveExit) => {
      if (server.exitCode !== null) return resolveExit();
      const timer = setTimeout(() => {
        try {
          process.kill(-server.pid, "SIGKILL");
        } catch {
          // already gone
        }
        resolveExit();
      }, 15_000);
      server.on("exit", () => {
        clearTimeout(timer);
        resolveExit();
      });
    });
    rmSync(profileDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
  log(checks.failures ? `${checks.failures} check(s) failed` : "all checks passed");
  process.exit(checks.failures ? 1 : 0);
}

main();
