// Issue 14's usage view, called from run.mjs as the superadmin on the admin console: the Usage
// page lists users with today's and this month's figures and their effective limits, draws two
// 30-day bar charts (messages, tokens) in SVG with accessible titles, sets a user's limit, and
// switches to usage per group and per model. One message is sent first over the API (a
// separate log-in of the superadmin, so the browser's session is left alone) so that today's
// figures and bars are not all zero.
import { join } from "node:path";

async function gql(base, query, variables, token) {
  const response = await fetch(`${base}/graphql`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors?.length) throw new Error(`GraphQL: ${body.errors.map((error) => error.message).join("; ")}`);
  return body.data;
}

/** Log in as `account` over the API and send one question to `model`; returns true when sent. */
async function sendOneMessage(base, account, model) {
  const { logIn } = await gql(
    base,
    "mutation($email: String!, $password: String!) { logIn(email: $email, password: $password) { __typename ... on AuthPayload { accessToken } } }",
    account,
  );
  const token = logIn.accessToken;
  const { models } = await gql(base, "query { models(first: 100) { items { id name } } }", {}, token);
  const found = models.items.find((item) => item.name === model);
  const { startChatSession } = await gql(
    base,
    "mutation($modelId: UUID!) { startChatSession(modelId: $modelId, title: \"usage e2e\") { __typename ... on ChatSession { id } } }",
    { modelId: found.id },
    token,
  );
  const { sendMessage } = await gql(
    base,
    "mutation($id: UUID!) { sendMessage(sessionId: $id, content: \"What is in the manuals?\") { __typename } }",
    { id: startChatSession.id },
    token,
  );
  return sendMessage.__typename === "MessageSent";
}

async function visible(locator, timeout = 10_000) {
  return locator.waitFor({ state: "visible", timeout }).then(
    () => true,
    () => false,
  );
}

async function checkCharts(page, check, what) {
  for (const unit of ["messages", "tokens"]) {
    const chart = page.locator(`svg[data-chart="${unit}"]`);
    await chart.waitFor({ timeout: 10_000 });
    const bars = await chart.locator("rect.usage-bar").count();
    check(bars === 30, `${what}: the ${unit} chart has 30 bars, one a day (${bars})`);
    const title = (await chart.locator(":scope > title").textContent()) ?? "";
    const labelled = (await chart.getAttribute("role")) === "img" && (await chart.getAttribute("aria-labelledby"));
    check(
      !!labelled && title.toLowerCase().startsWith(`${unit} per day, last 30 days`),
      `${what}: the ${unit} chart is an image with a title ("${title}")`,
    );
  }
}

export async function checkUsagePage(page, { base, check, results, admin, user, group, model }) {
  check(await sendOneMessage(base, admin, model), "a message is sent over the API to have usage to show");
  await page.getByRole("link", { name: "Usage", exact: true }).click();
  await page.getByRole("heading", { name: "Usage", exact: true }).waitFor({ timeout: 10_000 });
  const users = page.getByRole("table", { name: "Usage per user" });
  check(await visible(users), "the usage page shows a table per user");
  const row = users.locator(`[data-usage-row="${user}"]`);
  check(await visible(row), `the usage table lists ${user}`);
  const headers = (await users.locator("thead th").allTextContents()).join(" | ");
  check(
    ["Messages today", "Tokens today", "Messages this month", "Tokens this month", "Models this month", "Effective limits"].every((name) => headers.includes(name)),
    `the usage table has today's and this month's figures and the effective limits (${headers})`,
  );
  await checkCharts(page, check, "per user");
  const adminRow = users.locator(`[data-usage-row="${admin.email}"]`);
  const messagesToday = Number((await adminRow.locator('td[data-label="Messages today"]').textContent())?.trim());
  check(messagesToday >= 1, `the table counts today's message of ${admin.email} (${messagesToday})`);
  const modelsCell = (await adminRow.locator('td[data-label="Models this month"]').textContent()) ?? "";
  check(modelsCell.includes(`${model}: `), `the table names the model ${admin.email} used this month ("${modelsCell}")`);
  const today = await page.locator('svg[data-chart="messages"] rect.usage-bar').last();
  const todayValue = Number(await today.getAttribute("data-value"));
  const todayHeight = Number(await today.getAttribute("height"));
  check(todayValue >= 1 && todayHeight > 0, `today's messages bar is drawn (${todayValue} messages, ${todayHeight} high)`);

  // The quota editor: a per-user limit shows up as the user's effective limit.
  await row.getByRole("button", { name: "Set limits" }).click();
  const editor = page.getByRole("form", { name: `Limits of ${user}` });
  await editor.getByLabel("Messages per day").fill("500");
  await editor.getByRole("button", { name: "Save limits" }).click();
  check(await visible(page.getByText(`Limits of ${user} saved.`)), "the limits editor saves a user's limit");
  check(
    await visible(row.getByText(/messages\/day: \d+ of 500 \(user\)/)),
    "the user's effective limits show the new per-user limit and its source",
  );
  await page.screenshot({ path: join(results, "admin-usage.png"), fullPage: true });

  await page.getByLabel("Show usage per").selectOption("group");
  const groups = page.getByRole("table", { name: "Usage per group" });
  check(await visible(groups.locator(`[data-usage-row="${group}"]`)), `usage per group lists ${group}`);
  await checkCharts(page, check, "per group");

  await page.getByLabel("Show usage per").selectOption("model");
  const models = page.getByRole("table", { name: "Usage per model" });
  const modelRow = models.locator(`[data-usage-row="${model}"]`);
  check(await visible(modelRow), `usage per model lists ${model}`);
  const modelMessages = Number((await modelRow.locator('td[data-label="Messages today"]').textContent())?.trim());
  check(modelMessages >= 1, `usage per model counts the message sent to ${model} (${modelMessages})`);
  await checkCharts(page, check, "per model");
  await page.getByRole("link", { name: "Models", exact: true }).click();
}
