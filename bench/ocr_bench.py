"""OCR benchmark: quality on a low-resolution scan, a flat scanned PDF, and pages/s with peak RSS.

    .venv/bin/python bench/ocr_bench.py [--pages 50] [--scan-dpi 150] [--skip-throughput]

Every figure goes through the product's own code path: `workers.pipeline.parse_pdf.open_document`
starts the sandboxed parser child (`workers.pipeline.pdf_extraction_child`, address-space
limit, per-page timeout) exactly as the ingest worker does, with OCR on (`OCR_LANGUAGES=eng`),
and the child runs `workers/pipeline/ocr.py` (grayscale, low-resolution upscaling, PDF pages
rendered with pypdfium2 at 300 dpi, one `tesseract` process per page).

1. Quality: `../shared/data/docs/formats/unstructured__layout-parser-paper-fast.jpg` (a 612x792
   scan of a letter page) read as an IMAGE document, against the text layer of page 1 of
   `../shared/data/docs/unstructured__layout-parser-paper-fast.pdf` (pypdf, as the product
   reads text layers). Bag of words: lower-cased runs of letters and digits, words split by
   a hyphen at a line end joined first; recall = matched words / words of the text layer,
   precision = matched words / words OCR read (matched: per-word minimum of the two counts).
2. `unstructured__loremipsum-flat.pdf` (one page, an image only, no text layer): the words OCR
   reads, which must include "lorem" and "ipsum" (searchable text).
3. Throughput: a `--pages`-page image-only PDF built here from shared PDFs (their pages
   rendered to grayscale images with pypdfium2 at `--scan-dpi`, assembled with Pillow), read
   through the child: OCR pages/s, wall time, the bag-of-words recall against the source
   pages' text layers, and peak RSS of the parser child alone and of the child plus its
   tesseract processes (psutil, sampled every 20 ms).

Prints the machine's load average before and after (the figures depend on it); the last
line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil

from workers.pipeline.parse_pdf import PdfExtractionLimits, PdfPageStream, open_document

DOCS = Path(__file__).resolve().parents[2] / "shared" / "data" / "docs"
SCAN = DOCS / "formats" / "unstructured__layout-parser-paper-fast.jpg"
SCAN_TRUTH = DOCS / "unstructured__layout-parser-paper-fast.pdf"
FLAT_PDF = DOCS / "formats" / "unstructured__loremipsum-flat.pdf"
THROUGHPUT_SOURCES = ["R-intro.pdf", "R-lang.pdf", "sample-files__multicolumn.pdf"]
LIMITS = PdfExtractionLimits(ocr_languages="eng")

_WORD = re.compile(r"[a-z0-9]+")
_LINE_END_HYPHEN = re.compile(r"(\w)-\s*\n\s*(\w)")


def words(text: str) -> Counter[str]:
    return Counter(_WORD.findall(_LINE_END_HYPHEN.sub(r"\1\2", text).lower()))


def bag_of_words(truth: str, read: str) -> dict[str, float | int]:
    expected, got = words(truth), words(read)
    matched = sum((expected & got).values())
    return {
        "recall": round(matched / max(1, sum(expected.values())), 4),
        "precision": round(matched / max(1, sum(got.values())), 4),
        "truth_words": sum(expected.values()),
        "ocr_words": sum(got.values()),
    }


def text_layer(path: Path, pages: list[int] | None = None) -> list[str]:
    from pypdf import PdfReader

    reader = PdfReader(path)
    indexes = range(len(reader.pages)) if pages is None else pages
    return [reader.pages[index].extract_text() or "" for index in indexes]


class RssSampler:
    """Peak RSS of the parser child, and of the child plus its children (tesseract)."""

    def __init__(self, stream: PdfPageStream) -> None:
        self.stream = stream
        self.child_peak = 0
        self.tree_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            child = self.stream._child
            if child is None:
                continue
            try:
                process = psutil.Process(child.process.pid)
                own = process.memory_info().rss
                tree = own
                for grandchild in process.children(recursive=True):
                    try:
                        tree += grandchild.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                continue
            self.child_peak = max(self.child_peak, own)
            self.tree_peak = max(self.tree_peak, tree)


def read_through_child(path: Path, kind: str) -> tuple[list[str], list[str], float, RssSampler]:
    """(page texts, warnings, seconds, RSS sampler) of the document read by the parser child."""
    started = time.perf_counter()
    stream = open_document(path, kind, LIMITS)
    texts: list[str] = []
    with stream, RssSampler(stream) as sampler:
        for page in stream:
            texts.append(page.text)
    return texts, stream.warnings, time.perf_counter() - started, sampler


def build_image_only_pdf(page_count: int, dpi: int, directory: Path) -> tuple[Path, list[str]]:
    """A PDF of `page_count` grayscale page images rendered from the shared PDFs (no text
    layer), and the text layers of the pages it shows."""
    import pypdfium2
    from PIL import Image

    images: list[Image.Image] = []
    truths: list[str] = []
    for name in THROUGHPUT_SOURCES:
        source = DOCS / name
        if not source.exists():
            continue
        document = pypdfium2.PdfDocument(source)
        layers = text_layer(source, list(range(min(len(document), page_count - len(images)))))
        for index, layer in enumerate(layers):
            if len(layer.split()) < 80:  # title pages, blank pages: not a fair OCR page
                continue
            page = document[index]
            images.append(page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L"))
            page.close()
            truths.append(layer)
            if len(images) == page_count:
                break
        document.close()
        if len(images) == page_count:
            break
    if len(images) < page_count:
        raise SystemExit(f"only {len(images)} text pages found in {THROUGHPUT_SOURCES}")
    path = directory / f"image-only-{page_count}-pages.pdf"
    images[0].save(path, format="PDF", save_all=True, append_images=images[1:], resolution=dpi)
    return path, truths


def load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--scan-dpi", type=int, default=150)
    parser.add_argument("--skip-throughput", action="store_true")
    arguments = parser.parse_args()
    figures: dict[str, Any] = {"cpus": os.cpu_count(), "load_average_before": load()}
    from PIL import Image

    with Image.open(SCAN) as scan:
        figures["scan_pixels"] = list(scan.size)
    texts, warnings, seconds, sampler = read_through_child(SCAN, "IMAGE")
    quality = bag_of_words(text_layer(SCAN_TRUTH, [0])[0], "\n".join(texts))
    figures["scan"] = {**quality, "seconds": round(seconds, 2), "warnings": warnings}
    print(f"scan {SCAN.name} {figures['scan_pixels']}: {figures['scan']}", file=sys.stderr)

    texts, warnings, seconds, sampler = read_through_child(FLAT_PDF, "PDF")
    flat_words = words("\n".join(texts))
    figures["flat_pdf"] = {
        "words": sum(flat_words.values()),
        "has_lorem_ipsum": flat_words["lorem"] > 0 and flat_words["ipsum"] > 0,
        "seconds": round(seconds, 2),
        "warnings": warnings,
    }
    print(f"flat PDF {FLAT_PDF.name}: {figures['flat_pdf']}", file=sys.stderr)

    if not arguments.skip_throughput:
        with tempfile.TemporaryDirectory() as directory:
            built = time.perf_counter()
            path, truths = build_image_only_pdf(arguments.pages, arguments.scan_dpi, Path(directory))
            build_seconds = time.perf_counter() - built
            texts, warnings, seconds, sampler = read_through_child(path, "PDF")
            quality = bag_of_words("\n".join(truths), "\n".join(texts))
            figures["throughput"] = {
                "pages": len(texts),
                "scan_dpi": arguments.scan_dpi,
                "pdf_mb": round(path.stat().st_size / 1e6, 1),
                "build_seconds": round(build_seconds, 1),
                "seconds": round(seconds, 1),
                "pages_per_second": round(len(texts) / seconds, 3),
                "seconds_per_page": round(seconds / max(1, len(texts)), 2),
                "recall": quality["recall"],
                "precision": quality["precision"],
                "peak_rss_child_mb": round(sampler.child_peak / 2**20, 1),
                "peak_rss_child_and_tesseract_mb": round(sampler.tree_peak / 2**20, 1),
                "warnings": warnings[:5],
            }
            print(f"throughput: {figures['throughput']}", file=sys.stderr)
    figures["load_average_after"] = load()
    figures["scan_ok"] = figures["scan"]["recall"] >= 0.90 and figures["scan"]["precision"] >= 0.90
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
