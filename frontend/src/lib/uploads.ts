/** State of the uploads in flight: one entry per file, driven by a reducer. */

/** Every kind the server reads (workers/pipeline/sniff.py classifies by content; the names
 * and types only steer the browser's file picker). */
export const ACCEPTED_KINDS =
  "PDF (scans read by OCR), Word (.docx), PowerPoint (.pptx), Excel (.xlsx), HTML, CSV/TSV, text, Markdown and images (PNG, JPEG, TIFF)";

export const ACCEPTED_FILE_TYPES = [
  ".pdf",
  ".docx",
  ".docm",
  ".pptx",
  ".pptm",
  ".xlsx",
  ".xlsm",
  ".html",
  ".htm",
  ".csv",
  ".tsv",
  ".txt",
  ".md",
  ".markdown",
  ".png",
  ".jpg",
  ".jpeg",
  ".tif",
  ".tiff",
  "application/pdf",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  "text/html",
  "text/csv",
  "text/tab-separated-values",
  "text/plain",
  "text/markdown",
  "image/png",
  "image/jpeg",
  "image/tiff",
].join(",");

export type UploadPhase = "uploading" | "processing" | "done" | "error";

export interface UploadItem {
  key: string;
  name: string;
  size: number;
  loaded: number;
  phase: UploadPhase;
  message: string | null;
}

export type UploadAction =
  | { type: "start"; key: string; name: string; size: number }
  | { type: "progress"; key: string; loaded: number; total: number }
  | { type: "sent"; key: string }
  | { type: "done"; key: string; message?: string }
  | { type: "error"; key: string; message: string }
  | { type: "dismiss"; key: string };

export function uploadsReducer(items: UploadItem[], action: UploadAction): UploadItem[] {
  switch (action.type) {
    case "start":
      return [
        ...items.filter((item) => item.key !== action.key),
        { key: action.key, name: action.name, size: action.size, loaded: 0, phase: "uploading", message: null },
      ];
    case "dismiss":
      return items.filter((item) => item.key !== action.key);
    default:
      return items.map((item) => {
        if (item.key !== action.key) return item;
        switch (action.type) {
          case "progress": {
            if (item.phase !== "uploading") return item;
            const size = action.total > 0 ? action.total : item.size;
            // Progress never goes backwards (browsers may report a smaller total late).
            const loaded = Math.min(Math.max(item.loaded, action.loaded), size);
            return { ...item, size, loaded, phase: loaded >= size && size > 0 ? "processing" : "uploading" };
          }
          case "sent":
            return { ...item, loaded: item.size, phase: item.phase === "uploading" ? "processing" : item.phase };
          case "done":
            return { ...item, loaded: item.size, phase: "done", message: action.message ?? null };
          case "error":
            return { ...item, phase: "error", message: action.message };
        }
      });
  }
}

export function uploadPercent(item: Pick<UploadItem, "loaded" | "size">): number {
  if (item.size <= 0) return 0;
  return Math.min(100, Math.round((item.loaded / item.size) * 100));
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value >= 10 ? 0 : 1)} ${units[unit]}`;
}
