// Issue 15's browser check, called from run.mjs: the Access tokens page creates a token whose
// secret is shown once (in full, gone after a reload; the list shows only its prefix), the
// token works on the OpenAI-compatible API, and Revoke stops it at once.
import { join } from "node:path";

export async function checkAccessTokens(page, { base, check, results }) {
  await page.getByRole("link", { name: "Access tokens", exact: true }).click();
  await page.getByRole("heading", { name: "Access tokens" }).waitFor({ timeout: 10_000 });
  await page.getByLabel("Token name").fill("e2e script");
  await page.getByRole("button", { name: "Create token" }).click();
  const shown = page.getByRole("textbox", { name: "Token", exact: true });
  await shown.waitFor({ timeout: 10_000 });
  const secret = await shown.inputValue();
  check(/^ragql_pat_[A-Za-z0-9_-]{43}$/.test(secret), "a new access token is shown once, in full");
  const models = await fetch(`${base}/v1/models`, { headers: { Authorization: `Bearer ${secret}` } });
  check(models.status === 200, `the new token works on /v1/models (${models.status})`);
  const row = page.getByRole("row", { name: /e2e script/ });
  await row.waitFor({ timeout: 10_000 });
  const rowText = (await row.textContent()) ?? "";
  check(rowText.includes(secret.slice(0, 16)) && !rowText.includes(secret), "the token list shows the prefix, never the secret");
  await page.screenshot({ path: join(results, "access-tokens.png"), fullPage: true });
  await page.reload();
  await page.getByRole("heading", { name: "Access tokens" }).waitFor({ timeout: 15_000 });
  await page.getByRole("row", { name: /e2e script/ }).waitFor({ timeout: 10_000 });
  check((await page.getByRole("textbox", { name: "Token", exact: true }).count()) === 0, "after a reload the secret is not shown again");
  await page.getByRole("row", { name: /e2e script/ }).getByRole("button", { name: "Revoke" }).click();
  await page.getByText("revoked: it stopped working").waitFor({ timeout: 10_000 });
  const after = await fetch(`${base}/v1/models`, { headers: { Authorization: `Bearer ${secret}` } });
  check(after.status === 401, `a revoked token is refused on /v1/models (${after.status})`);
  await page.getByRole("link", { name: "Chat", exact: true }).click();
}
