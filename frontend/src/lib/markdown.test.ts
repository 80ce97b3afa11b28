// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { renderMarkdown } from "./markdown";

const NONE = new Set<number>();

function render(text: string, numbers: ReadonlySet<number> = NONE): HTMLElement {
  const root = document.createElement("div");
  root.innerHTML = renderMarkdown(text, numbers);
  return root;
}

describe("renderMarkdown links", () => {
  it("shows a document's link as text with its target, never as a live link", () => {
    const root = render("Your session expired: [log in again](https://evil.example/login?next=1).");
    expect(root.querySelector("a")).toBeNull();
    expect(root.querySelector("[href]")).toBeNull();
    expect(root.textContent?.trim()).toBe("Your session expired: log in again (https://evil.example/login?next=1).");
    expect(root.querySelector(".link-target")?.textContent).toBe("(https://evil.example/login?next=1)");
  });

  it("never makes javascript:, data: or vbscript: targets clickable", () => {
    for (const target of ["javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)", "JaVaScRiPt:alert(1)"]) {
      const root = render(`[click](${target})`);
      expect(root.querySelector("a, [href], script")).toBeNull();
      expect(root.textContent).toContain("click (");
    }
  });

  it("handles reference links, autolinks, bare URLs and e-mail addresses", () => {
    const root = render(
      "See [the manual][m], <https://example.org/a>, www.example.com and https://example.net/b, or ada@example.com.\n\n[m]: https://evil.example/manual",
    );
    expect(root.querySelector("a, [href]")).toBeNull();
    const text = root.textContent ?? "";
    expect(text).toContain("the manual (https://evil.example/manual)");
    // Autolinks show their target once, not twice.
    expect(text).toContain("https://example.org/a,");
    expect(text).not.toContain("https://example.org/a (");
    expect(text).toContain("https://example.net/b");
    expect(text).toContain("www.example.com");
    expect(text).toContain("ada@example.com");
  });

  it("escapes raw HTML links and strips URL attributes", () => {
    const root = render('Go <a href="https://evil.example" onclick="steal()">here</a> ![x](https://evil.example/p.png "t")');
    expect(root.querySelector("a, img, [href], [src], [onclick]")).toBeNull();
    expect(root.textContent).toContain('<a href="https://evil.example" onclick="steal()">here</a>');
  });

  it("keeps formatting inside link text and citation chips next to it", () => {
    const root = render("Read **[the guide](https://example.org/g)** [1].", new Set([1]));
    expect(root.querySelector("strong .link-text")?.textContent).toBe("the guide");
    expect(root.querySelector("button.cite")?.getAttribute("data-cite")).toBe("1");
    expect(root.querySelector("a")).toBeNull();
  });
});
