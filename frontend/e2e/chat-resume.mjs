// Issue 16's browser checks, called from run.mjs: an ended chat is continued (never a composer,
// attach or Regenerate the server would refuse), a file attached to a chat shows in the
// conversation without covering the composer, and at phone width (390 px) the composer's
// placeholder and the admin models table's Actions column are on screen, not clipped.
import { join } from "node:path";

const PHONE = { width: 390, height: 800 };
const NOTES = {
  name: "quokka-notes.txt",
  mimeType: "text/plain",
  buffer: Buffer.from("The quokka festival on Rottnest Island is held every March, when the quokkas have their young.\n"),
};

/** Whether `inner` lies inside `outer` (both bounding boxes), within a pixel. */
const inside = (inner, outer) =>
  !!inner && !!outer && inner.x >= outer.x - 1 && inner.y >= outer.y - 1 && inner.x + inner.width <= outer.x + outer.width + 1 && inner.y + inner.height <= outer.y + outer.height + 1;
const overlaps = (a, b) => !!a && !!b && a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

/** Visible, inside the viewport, and the element itself is what is drawn at its centre (not covered). */
async function onScreen(page, locator) {
  if (!(await locator.isVisible().catch(() => false))) return { ok: false, why: "not visible" };
  await locator.scrollIntoViewIfNeeded();
  const box = await locator.boundingBox();
  const viewport = page.viewportSize();
  if (!inside(box, { x: 0, y: 0, width: viewport.width, height: viewport.height })) return { ok: false, why: `box ${JSON.stringify(box)} outside the viewport` };
  const topmost = await locator.evaluate((element) => {
    const rect = element.getBoundingClientRect();
    const hit = document.elementFromPoint(rect.x + rect.width / 2, rect.y + rect.height / 2);
    return !!hit && (hit === element || element.contains(hit));
  });
  return topmost ? { ok: true, why: JSON.stringify(box) } : { ok: false, why: "covered by another element" };
}

async function waitAnswered(page, count) {
  const answer = page.locator("article.message.assistant").nth(count - 1);
  await answer.waitFor({ timeout: 30_000 });
  const until = Date.now() + 120_000;
  let status = "";
  while (Date.now() < until) {
    status = (await answer.getAttribute("data-status")) ?? "";
    if (!["STREAMING", "PENDING"].includes(status)) break;
    await page.waitForTimeout(200);
  }
  return { answer, status };
}

async function ask(page, question, answers) {
  await page.getByRole("textbox", { name: "Your question" }).fill(question);
  await page.getByRole("button", { name: "Send" }).click();
  return waitAnswered(page, answers);
}

/** As an administrator, on the models list. */
export async function checkAdminModelsOnPhone(page, { check, results, model }) {
  await page.setViewportSize(PHONE);
  try {
    const row = page.getByRole("table", { name: "Models" }).getByRole("row").filter({ hasText: model });
    await row.first().waitFor({ timeout: 10_000 });
    for (const name of ["Settings", "Documents"]) {
      const action = row.first().getByRole("link", { name, exact: true });
      const seen = await onScreen(page, action);
      check(seen.ok, `at 390 px the models table's ${name} action is visible and not clipped (${seen.why})`);
      const wrap = await page.locator(".table-wrap").first().boundingBox();
      check(inside(await action.boundingBox(), wrap), `at 390 px the ${name} action lies inside the table's container`);
    }
    const scrolls = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
    check(scrolls, "at 390 px the admin page does not overflow sideways");
    await page.screenshot({ path: join(results, "admin-models-phone.png"), fullPage: true });
  } finally {
    await page.setViewportSize({ width: 1280, height: 860 });
  }
}

/** As an administrator, on an EXTRACTIVE model's settings page. */
export async function checkExtractiveSettings(page, { check }) {
  await page.getByRole("form", { name: "Model settings" }).waitFor();
  const hidden = (await page.getByLabel("Temperature").count()) === 0 && (await page.getByLabel("Max output tokens").count()) === 0;
  check(hidden, "an EXTRACTIVE model's settings hide temperature and max output tokens");
  check((await page.getByRole("button", { name: "Test connection" }).count()) === 0, "an EXTRACTIVE model's settings offer no connection test");
  check(await page.getByTestId("extractive-note").isVisible(), "the settings say why those do not apply");
}

/** As a user with access to the model: two chats, go back to the older one and continue it. */
export async function checkResumeAttachAndPhone(page, { check, results, log }) {
  // The first chat, with a file attached to it.
  await page.getByRole("button", { name: "New chat" }).click();
  await ask(page, "Which files are in this chat?", 1);
  const firstUrl = page.url();
  await page.locator('.composer input[type="file"]').setInputFiles(NOTES);
  const status = page.locator(".attach-status");
  if (await status.isVisible().catch(() => false)) {
    const statusBox = await status.boundingBox();
    const textBox = await page.getByRole("textbox", { name: "Your question" }).boundingBox();
    const sendBox = await page.getByRole("button", { name: "Send" }).boundingBox();
    check(
      !overlaps(statusBox, textBox) && !overlaps(statusBox, sendBox),
      `the attachment's status does not cover the composer (status ${JSON.stringify(statusBox)}, text box ${JSON.stringify(textBox)}, Send ${JSON.stringify(sendBox)})`,
    );
    await page.screenshot({ path: join(results, "chat-attaching.png") });
  } else {
    log("note: the attachment status was gone before it could be measured");
  }
  const note = page.locator(`[data-attachment="${NOTES.name}"]`);
  check(await note.waitFor({ timeout: 15_000 }).then(() => true, () => false), "the conversation shows the file attached to the chat");
  const until = Date.now() + 120_000;
  while (Date.now() < until && (await note.getAttribute("data-status")) !== "READY") await page.waitForTimeout(500);
  check((await note.getAttribute("data-status")) === "READY" && /ready/.test((await note.textContent()) ?? ""), "the attached file is shown as ready");
  const { answer: fileAnswer } = await ask(page, "When is the quokka festival on Rottnest Island held?", 2);
  check(/March/.test((await fileAnswer.textContent()) ?? ""), "a question is answered from the attached file");
  const firstMessages = await page.locator("article.message").count();

  // A newer chat with the same model ends the first one.
  await page.getByRole("button", { name: "New chat" }).click();
  await ask(page, "A question in a newer chat", 1);
  const secondUrl = page.url();
  check(secondUrl !== firstUrl, "the newer chat has its own page");

  // Back to the first: ended, so no composer, attach or Regenerate — "Continue this chat" instead.
  await page.getByRole("link", { name: /Which files are in this chat/ }).click();
  await page.waitForURL(firstUrl);
  const resumeButton = page.getByRole("button", { name: "Continue this chat" });
  check(await resumeButton.waitFor({ timeout: 10_000 }).then(() => true, () => false), "an ended chat offers “Continue this chat”");
  await page.locator("article.message").nth(firstMessages - 1).waitFor();
  check(
    (await page.getByRole("textbox", { name: "Your question" }).count()) === 0 &&
      (await page.getByRole("button", { name: "Attach a file to this chat" }).count()) === 0 &&
      (await page.getByRole("button", { name: /Regenerate/ }).count()) === 0,
    "an ended chat offers no composer, attach or Regenerate",
  );
  check(await page.locator(`[data-attachment="${NOTES.name}"]`).isVisible(), "the ended chat still shows its attached file");
  await page.screenshot({ path: join(results, "chat-ended.png") });
  await resumeButton.click();
  const composer = page.getByRole("textbox", { name: "Your question" });
  check(await composer.waitFor({ timeout: 10_000 }).then(() => true, () => false), "continuing the chat brings its composer back");
  check(await page.getByRole("button", { name: /Regenerate/ }).isVisible(), "a continued chat offers Regenerate on its last answer");
  await page.reload();
  await composer.waitFor({ timeout: 15_000 });
  await page.locator("article.message").nth(firstMessages - 1).waitFor({ timeout: 10_000 }).catch(() => undefined);
  const kept = await page.locator("article.message").count();
  check(kept === firstMessages, `the continued chat keeps its history after a reload (${kept} of ${firstMessages} messages)`);
  check(await page.getByRole("button", { name: /Regenerate/ }).isVisible(), "after a reload the continued chat still offers Regenerate");
  const newerMeta = page.getByRole("link", { name: /A question in a newer chat/ });
  check(/ended/.test((await newerMeta.textContent()) ?? ""), "the newer chat is now the ended one in the history");
  const { status: resumedStatus } = await ask(page, "Back in the first chat: when is the quokka festival?", 3);
  check(resumedStatus === "COMPLETE", `a question in the continued chat is answered (${resumedStatus})`);

  // Phone width: the composer's placeholder fits in its box, the composer is on screen.
  await page.setViewportSize(PHONE);
  try {
    const fit = await composer.evaluate((element) => {
      const style = getComputedStyle(element);
      const context = document.createElement("canvas").getContext("2d");
      context.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
      const text = element.getAttribute("placeholder") ?? "";
      const width = element.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      const height = element.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
      const lineHeight = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.5;
      const lines = Math.ceil(context.measureText(text).width / width);
      return { text, lines, fits: lines * lineHeight <= height + 1, width, height };
    });
    check(fit.fits, `at 390 px the composer placeholder “${fit.text}” fits its box (${fit.lines} line(s) in ${Math.round(fit.width)}×${Math.round(fit.height)} px)`);
    for (const [label, locator] of [
      ["text box", composer],
      ["Send button", page.getByRole("button", { name: "Send" })],
      ["attach button", page.getByRole("button", { name: "Attach a file to this chat" })],
    ]) {
      const seen = await onScreen(page, locator);
      check(seen.ok, `at 390 px the composer's ${label} is visible and not clipped (${seen.why})`);
    }
    await page.screenshot({ path: join(results, "chat-phone-composer.png") });
  } finally {
    await page.setViewportSize({ width: 1280, height: 860 });
  }
}

/** As the superadmin: the audit log names users, models and groups — no ids, no raw JSON. */
export async function checkAuditLogNames(page, { check, model, group, member }) {
  await page.getByRole("link", { name: "Audit log", exact: true }).click();
  const table = page.getByRole("table", { name: "Audit log" });
  await table.waitFor({ timeout: 10_000 });
  const rows = (await table.locator("tbody tr").allTextContents()).map((row) => row.replace(/\s+/g, " "));
  const has = (action, ...words) => rows.some((row) => row.includes(action) && words.every((word) => row.includes(word)));
  check(has("group.add_member", `group ${group}`, `member ${member}`), "the audit log names the group and the member added to it");
  check(has("model.grant", `model ${model}`, `to group ${group}`), "the audit log names the model and the group it was granted to");
  check(has("model.create", `model ${model}`), "the audit log names the model created");
  const ids = rows.filter((row) => /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i.test(row) || /[{}]/.test(row));
  check(ids.length === 0, `no audit row shows an id or raw JSON (${ids.slice(0, 2).join(" | ")})`);
  await page.getByRole("link", { name: "Models", exact: true }).click();
}
