"""Optical character recognition with Tesseract, for images and PDF pages without text.

Runs in the sandboxed parser child (pdf_extraction_child.py), never in the worker.
Tesseract is Debian's `tesseract` command (installed by `make install-system`), run once
per page with a timeout and `OMP_THREAD_LIMIT=1` (its OpenMP threads only fight the
worker for the machine's cores). Pages are converted to grayscale and low-resolution
input is upscaled first: Tesseract reads text best at ~20-30 px per x-height, and a
612x792 scan of a letter page (72 dpi) read as it is loses most words (0.62 word error
rate) while the same scan upscaled reads at >= 0.93 recall (bench/ocr_bench.py).
PDF pages are rendered with pypdfium2 at 300 dpi, less when that would pass the pixel cap.
"""

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.pipeline.errors import DocumentParseError
from workers.pipeline.units import Unit

# Pages whose longest side is below this are low resolution (a letter page under ~135 dpi)
# and upscaled to UPSCALED_LONG_SIDE_PIXELS; larger ones are read as they are (upscaling a
# 1377-px table screenshot 2x made Tesseract lose most of its rows).
LOW_RESOLUTION_LONG_SIDE_PIXELS = 1500
UPSCALED_LONG_SIDE_PIXELS = 2000
MAX_UPSCALE = 4.0
PDF_RENDER_DPI = 300
# An image smaller than this on both sides cannot hold a legible word (Tesseract needs
# ~10 px per capital letter): a page drawing only such images (fills, dots, 1x1 pixel
# stand-ins for a scan) is not rendered or read.
MIN_READABLE_IMAGE_PIXELS = 16


@dataclass(frozen=True, slots=True)
class OcrOptions:
    languages: str = "eng"
    timeout_seconds: float = 50.0
    max_image_pixels: int = 60_000_000
    max_image_pages: int = 500


class OcrError(Exception):
    pass


def tesseract_available() -> bool:
    return shutil.which("tesseract") is not None


def prepare(image: Any) -> Any:
    """Grayscale, upscaled when the page is small (scans at 72-150 dpi)."""
    from PIL import Image

    if image.mode not in ("L", "1"):
        image = image.convert("L")
    long_side = max(image.size)
    if 0 < long_side < LOW_RESOLUTION_LONG_SIDE_PIXELS:
        factor = min(MAX_UPSCALE, UPSCALED_LONG_SIDE_PIXELS / long_side)
        if factor > 1.2:
            image = image.resize(
                (round(image.width * factor), round(image.height * factor)), Image.Resampling.LANCZOS
            )
    return image


def recognise(image: Any, options: OcrOptions) -> str:
    """The text Tesseract reads in a prepared image; raises OcrError."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    environment = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        result = subprocess.run(
            ["tesseract", "stdin", "stdout", "-l", options.languages, "--psm", "3"],
            input=buffer.getvalue(),
            capture_output=True,
            timeout=options.timeout_seconds,
            env=environment,
            check=False,
        )
    except FileNotFoundError as error:
        raise OcrError("Tesseract is not installed (make install-system installs it)") from error
    except subprocess.TimeoutExpired as error:
        raise OcrError(f"OCR took longer than {options.timeout_seconds:g} s") from error
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OcrError(f"Tesseract failed ({detail[-1] if detail else result.returncode})")
    return result.stdout.decode("utf-8", "replace")


def _too_many_pixels(width: int, height: int, options: OcrOptions) -> DocumentParseError:
    return DocumentParseError(
        f"The image is {width:,} × {height:,} pixels ({width * height / 1e6:,.0f} million); ragql reads "
        f"images of at most {options.max_image_pixels / 1e6:,.0f} million pixels (OCR_MAX_IMAGE_PIXELS)"
    )


def image_units(path: Path, options: OcrOptions) -> tuple[str | None, int, Iterator[Unit]]:
    """Every page (frame) of a PNG/JPEG/TIFF as an OCR'd unit."""
    from PIL import Image

    # Pillow's own guard, at our limit: it refuses (DecompressionBombError) at twice it.
    Image.MAX_IMAGE_PIXELS = options.max_image_pixels
    try:
        image = Image.open(path)
    except Image.DecompressionBombError as error:
        raise DocumentParseError(f"The image has too many pixels to read safely ({error})") from error
    except Exception as error:
        raise DocumentParseError(f"The image is damaged and cannot be read ({error})") from error
    width, height = image.size
    if width * height > options.max_image_pixels:
        raise _too_many_pixels(width, height, options)
    # n_frames walks the TIFF's page directory only (no pixels); stop counting at the cap.
    frames = 1
    try:
        while frames <= options.max_image_pages:
            image.seek(frames)
            frames += 1
    except EOFError:
        pass
    except Exception as error:
        raise DocumentParseError(f"The image is damaged and cannot be read ({error})") from error
    if frames > options.max_image_pages:
        raise DocumentParseError(
            f"The image has more than {options.max_image_pages:,} pages; ragql reads at most "
            f"{options.max_image_pages:,} (OCR_MAX_IMAGE_PAGES)"
        )

    def units() -> Iterator[Unit]:
        try:
            for index in range(frames):
                image.seek(index)
                frame_width, frame_height = image.size
                if frame_width * frame_height > options.max_image_pixels:
                    raise _too_many_pixels(frame_width, frame_height, options)
                text = recognise(prepare(image.copy()), options)
                location: dict[str, Any] = {"kind": "image", "ocr": True}
                if frames > 1:
                    location["page"] = index + 1
                yield Unit(index=index, text=text, location=location)
        finally:
            image.close()

    return None, frames, units()


def _only_unreadable_images(page: Any) -> bool:
    """True when everything drawn on the page is an image too small to hold a word.

    Reads the page's object list only (no pixels). Text objects (fonts without a Unicode
    map), paths (outlined glyphs) and shadings may draw letters, so any of them means
    the page is rendered and read.
    """
    import pypdfium2.raw as pdfium_c

    for page_object in page.get_objects():
        if page_object.type == pdfium_c.FPDF_PAGEOBJ_FORM:
            continue  # get_objects walks into the form's own objects
        if page_object.type != pdfium_c.FPDF_PAGEOBJ_IMAGE:
            return False
        metadata = page_object.get_metadata()
        if max(metadata.width, metadata.height) >= MIN_READABLE_IMAGE_PIXELS:
            return False
    return True


def ocr_pdf_page(document: Any, index: int, options: OcrOptions) -> str:
    """Render one PDF page (a pypdfium2 PdfDocument's) and read it.

    Pages that cannot hold text come back empty without a Tesseract call: a page drawing
    only tiny images, or one that renders to a near-uniform image.
    """
    page = document[index]
    try:
        if _only_unreadable_images(page):
            return ""
        # A cheap 36-dpi look first: a page that renders to one flat colour holds no text.
        low, high = page.render(scale=0.5, grayscale=True).to_pil().getextrema()
        if high - low < 16:
            return ""
        width_points, height_points = page.get_size()
        scale = PDF_RENDER_DPI / 72
        pixels = width_points * height_points * scale * scale
        if pixels > options.max_image_pixels:
            scale *= (options.max_image_pixels / pixels) ** 0.5
        bitmap = page.render(scale=scale, grayscale=True)
        image = bitmap.to_pil()
    finally:
        page.close()
    return recognise(prepare(image), options)
