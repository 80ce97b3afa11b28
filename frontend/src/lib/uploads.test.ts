import { describe, expect, it } from "vitest";
import { formatBytes, uploadPercent, uploadsReducer, type UploadAction, type UploadItem } from "./uploads";

const run = (actions: UploadAction[], start: UploadItem[] = []) => actions.reduce(uploadsReducer, start);

describe("upload progress", () => {
  it("tracks progress to processing, then done", () => {
    let items = run([{ type: "start", key: "a", name: "a.pdf", size: 1000 }, { type: "progress", key: "a", loaded: 250, total: 1000 }]);
    expect(uploadPercent(items[0])).toBe(25);
    expect(items[0].phase).toBe("uploading");
    items = run([{ type: "progress", key: "a", loaded: 1000, total: 1000 }], items);
    expect(items[0].phase).toBe("processing");
    items = run([{ type: "done", key: "a" }], items);
    expect(items[0].phase).toBe("done");
    expect(uploadPercent(items[0])).toBe(100);
  });

  it("never goes backwards and never passes 100%", () => {
    const items = run([
      { type: "start", key: "a", name: "a", size: 100 },
      { type: "progress", key: "a", loaded: 60, total: 100 },
      { type: "progress", key: "a", loaded: 40, total: 100 },
      { type: "progress", key: "a", loaded: 500, total: 100 },
    ]);
    expect(items[0].loaded).toBe(100);
    expect(uploadPercent(items[0])).toBe(100);
  });

  it("keeps files independent and reports errors", () => {
    const items = run([
      { type: "start", key: "a", name: "a", size: 10 },
      { type: "start", key: "b", name: "b", size: 10 },
      { type: "error", key: "b", message: "Only PDF, CSV and text files are accepted." },
      { type: "progress", key: "a", loaded: 5, total: 10 },
    ]);
    expect(items.map((item) => item.phase)).toEqual(["uploading", "error"]);
    expect(items[1].message).toMatch(/PDF/);
    expect(run([{ type: "dismiss", key: "b" }], items)).toHaveLength(1);
  });

  it("formats sizes", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(2048)).toBe("2.0 KB");
    expect(formatBytes(250 * 1024 * 1024)).toBe("250 MB");
  });
});

describe("accepted kinds", () => {
  it("lets the file picker offer every kind the server reads", async () => {
    const { ACCEPTED_FILE_TYPES, ACCEPTED_KINDS } = await import("./uploads");
    for (const extension of [".pdf", ".docx", ".pptx", ".xlsx", ".html", ".csv", ".txt", ".md", ".png", ".jpg", ".tiff"]) {
      expect(ACCEPTED_FILE_TYPES.split(",")).toContain(extension);
    }
    for (const word of ["PDF", "Word", "PowerPoint", "Excel", "HTML", "CSV", "Markdown", "PNG", "JPEG", "TIFF", "OCR"]) {
      expect(ACCEPTED_KINDS).toContain(word);
    }
  });
});
