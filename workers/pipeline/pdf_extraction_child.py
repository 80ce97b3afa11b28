"""Child-process side of PDF text extraction: `python -m workers.pipeline.pdf_extraction_child`.

pypdf runs here, never in the worker, so that a malicious or broken PDF that exhausts
memory (the address-space limit makes allocation fail instead of the kernel OOM-killing
the worker) or loops forever only costs this process. Messages go to stdout as one
JSON object per line; this module imports nothing heavy so the child starts fast.

Messages: {"type": "opened", "page_count": n} first, then per page
{"type": "page", "index": i, "text": str} or {"type": "page_failed", "index": i,
"reason": str}, and finally {"type": "done"}; {"type": "fatal", "reason": str} when the
document cannot be opened at all.
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


def extract_pages(path: str, first_page: int, max_pages: int, channel: BinaryIO) -> None:
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
        _send(channel, {"type": "page", "index": index, "text": text})
    _send(channel, {"type": "done"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--first-page", type=int, required=True)
    parser.add_argument("--max-pages", type=int, required=True)
    parser.add_argument("--max-memory-bytes", type=int, required=True)
    arguments = parser.parse_args()

    # Keep the protocol channel to ourselves: anything a library prints goes to stderr.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr
    # pypdf logs a warning for every recoverable oddity; the parent reports what matters.
    logging.disable(logging.WARNING)
    _limit_address_space(arguments.max_memory_bytes)
    extract_pages(arguments.path, arguments.first_page, arguments.max_pages, channel)
    channel.close()


if __name__ == "__main__":
    main()
