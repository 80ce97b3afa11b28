/**
 * Safe Markdown: raw HTML in the source is escaped (never rendered), citation markers
 * become chip buttons, and DOMPurify sanitizes the result as a second line of defence.
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
        const safe = /^(https?:|mailto:|\/)/i.test(token.href) ? token.href : "#";
        const text = this.parser.parseInline(token.tokens);
        return `<a href="${escapeHtml(safe)}" target="_blank" rel="noopener noreferrer">${text}</a>`;
      },
      image: ({ text }) => escapeHtml(text),
    },
  });
  const html = marked.parse(text) as string;
  return DOMPurify.sanitize(html, {
    ALLOWED_ATTR: ["href", "target", "rel", "class", "type", "data-cite", "aria-label", "start"],
    FORBID_TAGS: ["style", "form", "input", "img", "iframe"],
  });
}
