"""Child-process side of document parsing: `python -m workers.pipeline.pdf_extraction_child`.

Every parser runs here, never in the worker: pypdf for PDFs (with Tesseract OCR of pages
that have no text layer), python-docx, python-pptx, openpyxl, lxml (HTML) and Pillow +
Tesseract for images (`--kind`). pypdf runs here, so that a malicious or broken PDF that exhausts
memory (the address-space limit makes allocation fail instead of the kernel OOM-killing
the worker) or loops forever only costs this process. Messages go to stdout as one
JSON object per line; this module imports nothing heavy so the child starts fast.

Messages: {"type": "opened", "page_count": n} first, then per page
{"type": "page", "index": i, "text": str} or {"type": "page_failed", "index": i,
"reason": str}, and finally {"type": "done"}; {"type": "fatal", "reason": str} when the
document cannot be opened at all. A page message may carry "location" (units.py),
"header" and "rows" (tables), and "warning" (a page read but with a problem, e.g. OCR
failed). For kinds other than PDF a "page" is the kind's unit (units.py); the unit index
is the resume point after a crash.
"""

import argparse
import json
import logging
import os
import resource
import sys
from typing import Any, BinaryIO

ENCRYPTED_PDF_REASON = "The PDF is encrypted (password protected); remove the password and upload it again"


def _send(channel: BinaryIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    channel.write(b"\n")
    channel.flush()


def _limit_address_space(max_bytes: int) -> None:
    if max_bytes <= 0:
        return
    _, hard_limit = resource.getrlimit(resource.RLIMIT_AS)
    if hard_limit != resource.RLIM_INFINITY:
        max_bytes = min(max_bytes, hard_limit)
    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, hard_limit))


def _describe_open_failure(error: BaseException) -> str:
    detail = str(error).strip() or type(error).__name__
    return f"The PDF is damaged or truncated and cannot be read ({detail})"


def _metadata_title(reader: Any) -> str | None:
    """The document information dictionary's /Title, if it holds readable text."""
    try:
        title = reader.metadata.title if reader.metadata is not None else None
    except Exception:  # a broken info dictionary costs the title, not the document
        return None
    if not isinstance(title, str):
        return None
    title = " ".join(title.split())[:500]
    return title or None


def extract_pages(
    path: str, first_page: int, max_pages: int, channel: BinaryIO, ocr: "Any | None" = None
) -> None:
    """PDF pages; `ocr` (an ocr.OcrOptions) reads pages without a text layer with Tesseract."""
    import pypdf
    from pypdf.errors import FileNotDecryptedError

    try:
        file = open(path, "rb")  # a file object, not a path: pypdf then reads lazily
        reader = pypdf.PdfReader(file)
        if reader.is_encrypted:
            try:
                # Many PDFs are "encrypted" only with an empty user password (to set
                # permissions); those open fine without asking the user for anything.
                decrypted = reader.decrypt("")
            except Exception:  # unsupported algorithm, broken encryption dictionary
                decrypted = pypdf.PasswordType.NOT_DECRYPTED
            if decrypted == pypdf.PasswordType.NOT_DECRYPTED:
                _send(channel, {"type": "fatal", "reason": ENCRYPTED_PDF_REASON})
                return
        page_count = len(reader.pages)
    except FileNotDecryptedError:
        _send(channel, {"type": "fatal", "reason": ENCRYPTED_PDF_REASON})
        return
    except MemoryError:
        _send(channel, {"type": "fatal", "reason": "The PDF needs too much memory to open"})
        return
    except Exception as error:
        _send(channel, {"type": "fatal", "reason": _describe_open_failure(error)})
        return
    _send(channel, {"type": "opened", "page_count": page_count, "title": _metadata_title(reader)})

    state: dict[str, Any] = {}
    for index in range(first_page, min(first_page + max_pages, page_count)):
        try:
            text = reader.pages[index].extract_text()
        except MemoryError:
            _send(channel, {"type": "page_failed", "index": index, "reason": "it needs too much memory"})
            continue
        except RecursionError:
            _send(
                channel,
                {"type": "page_failed", "index": index, "reason": "its structure is nested too deeply"},
            )
            continue
        except Exception as error:
            detail = str(error).strip() or type(error).__name__
            _send(channel, {"type": "page_failed", "index": index, "reason": f"it is damaged ({detail})"})
            continue
        message: dict[str, Any] = {"type": "page", "index": index, "text": text}
        if ocr is not None and not text.strip():
            message.update(_ocr_page(path, index, ocr, state))
        _send(channel, message)
    _send(channel, {"type": "done"})


def _ocr_page(path: str, index: int, ocr: Any, state: dict[str, Any]) -> dict[str, Any]:
    """The page read by OCR, as fields of its message."""
    from workers.pipeline.ocr import OcrError, ocr_pdf_page

    try:
        if "pdfium" not in state:
            import pypdfium2

            state["pdfium"] = pypdfium2.PdfDocument(path)
        page = state["pdfium"][index]
        try:
            blank = next(iter(page.get_objects(max_depth=1)), None) is None
        finally:
            page.close()
        if blank:  # nothing drawn on the page: nothing to read
            return {}
        text = ocr_pdf_page(state["pdfium"], index, ocr)
    except OcrError as error:
        return {"warning": f"Page {index + 1} has no text layer and OCR failed: {error}"}
    except MemoryError:
        return {"warning": f"Page {index + 1} has no text layer and was too large to OCR"}
    except Exception as error:
        detail = str(error).strip() or type(error).__name__
        return {"warning": f"Page {index + 1} has no text layer and could not be rendered for OCR ({detail})"}
    return {"text": text, "location": {"kind": "page", "page": index + 1, "ocr": True}}


def extract_units(
    kind: str, path: str, first_unit: int, channel: BinaryIO, arguments: argparse.Namespace
) -> None:
    """Units of a DOCX/PPTX/XLSX/HTML/IMAGE document (units.py), from `first_unit` on."""
    from pathlib import Path

    from workers.pipeline.errors import DocumentParseError

    try:
        title, count, units = _open_units(kind, Path(path), arguments)
    except DocumentParseError as error:
        _send(channel, {"type": "fatal", "reason": error.reason})
        return
    except MemoryError:
        _send(channel, {"type": "fatal", "reason": "The document needs too much memory to open"})
        return
    except Exception as error:
        detail = str(error).strip() or type(error).__name__
        _send(channel, {"type": "fatal", "reason": f"The document is damaged and cannot be read ({detail})"})
        return
    _send(channel, {"type": "opened", "page_count": count, "title": title})
    try:
        for unit in units:
            if unit.index >= first_unit:
                _send(channel, unit.message())
    except DocumentParseError as error:
        _send(channel, {"type": "fatal", "reason": error.reason})
        return
    except MemoryError:
        _send(channel, {"type": "fatal", "reason": "Reading the document needed too much memory"})
        return
    except Exception as error:
        from workers.pipeline.ocr import OcrError

        if isinstance(error, OcrError):
            _send(channel, {"type": "fatal", "reason": f"OCR failed: {error}"})
            return
        detail = str(error).strip() or type(error).__name__
        _send(channel, {"type": "fatal", "reason": f"The document is damaged and cannot be read ({detail})"})
        return
    _send(channel, {"type": "done"})


def _open_units(kind: str, path: "Any", arguments: argparse.Namespace) -> tuple[str | None, int, Any]:
    if kind == "DOCX":
        from workers.pipeline import parse_docx

        title, units = parse_docx.read_units(path)
        return title, len(units), iter(units)
    if kind == "PPTX":
        from workers.pipeline import parse_pptx

        title, slides, units = parse_pptx.read_units(path)
        return title, slides, iter(units)
    if kind == "HTML":
        from workers.pipeline import parse_html

        title, units = parse_html.read_units(path)
        return title, len(units), iter(units)
    if kind == "XLSX":
        from workers.pipeline import parse_xlsx

        return parse_xlsx.iter_units(path, arguments.max_columns, arguments.max_cell_chars)
    if kind == "IMAGE":
        from workers.pipeline.errors import DocumentParseError
        from workers.pipeline.ocr import image_units

        options = _ocr_options(arguments)
        if options is None:
            raise DocumentParseError("Images are read by OCR, which is turned off (OCR_ENABLED=false)")
        return image_units(path, options)
    raise ValueError(f"unknown kind {kind}")


def _ocr_options(arguments: argparse.Namespace) -> "Any | None":
    if not arguments.ocr_languages:
        return None
    from workers.pipeline.ocr import OcrOptions

    return OcrOptions(
        languages=arguments.ocr_languages,
        timeout_seconds=arguments.ocr_timeout_seconds,
        max_image_pixels=arguments.max_image_pixels,
        max_image_pages=arguments.max_image_pages,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--first-page", type=int, required=True)
    parser.add_argument("--max-pages", type=int, required=True)
    parser.add_argument("--max-memory-bytes", type=int, required=True)
    parser.add_argument("--kind", default="PDF")
    # Empty: OCR off. Otherwise Tesseract's language list, e.g. "eng+deu".
    parser.add_argument("--ocr-languages", default="")
    parser.add_argument("--ocr-timeout-seconds", type=float, default=50.0)
    parser.add_argument("--max-image-pixels", type=int, default=60_000_000)
    parser.add_argument("--max-image-pages", type=int, default=500)
    parser.add_argument("--max-columns", type=int, default=512)
    parser.add_argument("--max-cell-chars", type=int, default=65_536)
    arguments = parser.parse_args()

    # Keep the protocol channel to ourselves: anything a library prints goes to stderr.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr
    # pypdf logs a warning for every recoverable oddity; the parent reports what matters.
    logging.disable(logging.WARNING)
    _limit_address_space(arguments.max_memory_bytes)
    if arguments.kind == "PDF":
        extract_pages(
            arguments.path, arguments.first_page, arguments.max_pages, channel, _ocr_options(arguments)
        )
    else:
        extract_units(arguments.kind, arguments.path, arguments.first_page, channel, arguments)
    channel.close()


if __name__ == "__main__":
    main()
