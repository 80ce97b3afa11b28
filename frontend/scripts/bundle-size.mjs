#!/usr/bin/env node
// Prints the JavaScript a browser loads before first render (the entry script and its
// modulepreloads in dist/index.html), gzipped, and the lazily loaded chunks separately.
// Usage: node scripts/bundle-size.mjs [--json]   (run `npm run build` first)
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");
const LIMIT_KB = 300;
let html;
try {
  html = readFileSync(join(dist, "index.html"), "utf8");
} catch {
  console.error("dist/index.html not found: run `npm run build` first.");
  process.exit(2);
}
const initial = new Set();
for (const match of html.matchAll(/<script[^>]+src="([^"]+\.js)"/g)) initial.add(match[1]);
for (const match of html.matchAll(/<link[^>]+rel="modulepreload"[^>]+href="([^"]+\.js)"/g)) initial.add(match[1]);

const sizeOf = (file) => {
  const bytes = readFileSync(join(dist, file.replace(/^\//, "")));
  return { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
};
const kb = (bytes) => (bytes / 1024).toFixed(1);

let raw = 0;
let gzip = 0;
const rows = [];
for (const file of initial) {
  const size = sizeOf(file);
  raw += size.raw;
  gzip += size.gzip;
  rows.push({ file, ...size, initial: true });
}
const initialNames = new Set([...initial].map((file) => file.split("/").pop()));
for (const file of readdirSync(join(dist, "assets"))) {
  if (!file.endsWith(".js") || initialNames.has(file)) continue;
  rows.push({ file: `/assets/${file}`, ...sizeOf(`assets/${file}`), initial: false });
}
if (process.argv.includes("--json")) {
  console.log(JSON.stringify({ initialJsRawBytes: raw, initialJsGzipBytes: gzip, limitKb: LIMIT_KB, files: rows }));
} else {
  for (const row of rows) {
    console.log(`${row.initial ? "initial" : "lazy   "}  ${kb(row.gzip).padStart(7)} KB gz  ${kb(row.raw).padStart(7)} KB  ${row.file}`);
  }
  console.log(`initial-load JS: ${kb(gzip)} KB gzipped (${kb(raw)} KB raw); limit ${LIMIT_KB} KB`);
}
process.exit(gzip / 1024 <= LIMIT_KB ? 0 : 1);
