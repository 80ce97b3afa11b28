/**
 * Safe Markdown: raw HTML in the source is escaped (never rendered), citation markers
 * become chip buttons, and DOMPurify sanitizes the result as a second line of defence.
 *
 * Links are never live. Answers quote retrieved documents, and a document is content any
 * uploader chose: `[log in again](https://evil.example)` in a PDF would otherwise become a
 * convincing link in the app's own voice. Every link (inline, reference, autolink, bare URL)
 * is rendered as its text followed by its target in plain text — `log in again
 * (https://evil.example)` — so the reader sees where it points and has to copy it on
 * purpose; `javascript:`/`data:` targets are just text. Images show their alt text only
 * (nothing is fetched). DOMPurify additionally forbids `<a>` and every URL attribute.
 */
import DOMPurify from "dompurify";
import { Marked, type TokenizerAndRendererExtension } from "marked";

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (char) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[char]!);

function citationExtension(known: ReadonlySet<number>): TokenizerAndRendererExtension {
  return {
    name: "citation",
    level: "inline",
    start: (source) => source.indexOf("["),
    tokenizer(source) {
      const match = /^\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\](?![(:])/.exec(source);
      if (!match) return undefined;
      const numbers = match[1].split(",").map((part) => Number.parseInt(part.trim(), 10));
      if (!numbers.every((number) => known.has(number))) return undefined;
      return { type: "citation", raw: match[0], numbers };
    },
    renderer(token) {
      return (token.numbers as number[])
        .map(
          (number) =>
            `<button type="button" class="cite" data-cite="${number}" aria-label="Source ${number}">${number}</button>`,
        )
        .join("");
    },
  };
}

export function renderMarkdown(text: string, sourceNumbers: ReadonlySet<number>): string {
  const marked = new Marked({ gfm: true, breaks: false, async: false });
  marked.use({
    extensions: [citationExtension(sourceNumbers)],
    renderer: {
      html: (token) => escapeHtml(token.text),
      link(token) {
        const text = this.parser.parseInline(token.tokens);
        const target = token.href.trim();
        // An autolink or bare URL already shows its target as its text.
        if (!target || token.text.trim() === target || `mailto:${token.text.trim()}` === target) {
          return `<span class="link-text">${text}</span>`;
        }
        return `<span class="link-text">${text}</span> <span class="link-target">(${escapeHtml(target)})</span>`;
      },
      image: ({ text }) => escapeHtml(text),
    },
  });
  const html = marked.parse(text) as string;
  return DOMPurify.sanitize(html, {
    ALLOWED_ATTR: ["class", "type", "data-cite", "aria-label", "start"],
    FORBID_TAGS: ["a", "style", "form", "input", "img", "iframe", "object", "embed", "svg", "math"],
  });
}
