// Issue 16: access changes reach open pages. A user's chat page is open in its own browser
// profile while the superadmin, in the main page, grants that user a model and revokes it
// again through the admin UI: the user's model list gains and loses the model in place —
// no reload (the page's `visibleModels` subscription).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const WITHIN_MS = 10_000;

export async function checkLiveModelList(adminPage, { launchBrowser, base, user, model, check, results, logIn }) {
  const profileDir = mkdtempSync(join(tmpdir(), "ragql-e2e-chromium-user-"));
  const context = await launchBrowser(profileDir);
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await logIn(page, base, user);
    const empty = page.getByRole("heading", { name: "No models yet" });
    await empty.waitFor({ timeout: 15_000 });
    check(true, "the user without access sees the empty state");
    // The page has loaded; mark it so a reload would show (the mark would be gone).
    await page.evaluate(() => {
      window.__sameDocument = true;
    });

    const grants = adminPage.getByRole("region", { name: "Who may use this model" });
    await grants.getByLabel("Grant to one user (email)").fill(user.email);
    await grants.getByRole("button", { name: "Grant user" }).click();
    await adminPage.getByText(`Access granted to ${user.email}.`).waitFor();
    const option = page.getByLabel("Model").locator("option", { hasText: model });
    const appeared = await option.waitFor({ state: "attached", timeout: WITHIN_MS }).then(
      () => true,
      () => false,
    );
    check(appeared && (await empty.count()) === 0, `a grant made while the user's page is open shows "${model}" there without a reload`);
    check(await page.evaluate(() => window.__sameDocument === true), "…in the same document (no reload happened)");
    await page.screenshot({ path: join(results, "live-grant.png"), fullPage: true });

    const row = grants.locator("li", { hasText: user.email });
    await row.getByRole("button", { name: "Revoke" }).click();
    await adminPage.getByText("Access revoked.").waitFor();
    const gone = await empty.waitFor({ state: "visible", timeout: WITHIN_MS }).then(
      () => true,
      () => false,
    );
    check(gone && (await option.count()) === 0, "a revoke takes the model off the open page again, without a reload");
  } finally {
    await context.close();
    rmSync(profileDir, { recursive: true, force: true });
  }
}
