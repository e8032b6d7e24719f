"""The data directory is its owner's alone: directories 0700, databases, logs and secrets 0600.

SQLite files hold every partner's orders, invoices and key hashes; logs name partners
and amounts; ``admin-token`` is the bootstrap secret. ``o2c up`` creates its own
files private (:func:`open_private`), gives its children the umask
:data:`PRIVATE_UMASK` so theirs are too (SQLite creates ``-wal`` and ``-shm`` with the
database file's mode), and :func:`make_private` tightens what an older version left
readable when it starts.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import IO

PRIVATE_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
#: The files ``o2c up`` and its services keep in a data directory (and its ``logs/``).
_DATA_FILE_PATTERNS = ("*.db", "*.db-wal", "*.db-shm", "*.db-journal", "admin-token", "audit-key",
                       "broker.port", "supervisor.lock")
_LOG_FILE_PATTERNS = ("*.log",)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing and make it 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    path.chmod(PRIVATE_DIR_MODE)
    return path


def open_private(path: Path, mode: str = "ab") -> IO[bytes]:
    """Open ``path`` for appending (binary), created 0600 from the start whatever the umask."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    return os.fdopen(fd, mode)


def write_private(path: Path, text: str) -> None:
    """Replace ``path``'s content with ``text``; the file is 0600."""
    with open_private(path, "wb") as handle:
        handle.write(text.encode())
    path.chmod(PRIVATE_FILE_MODE)


def make_private(data_dir: Path) -> list[Path]:
    """Make ``data_dir`` and ``data_dir/logs`` 0700 and the o2c files in them 0600.

    Only o2c's own files are touched (databases and their journals, logs, the admin
    token, the broker port, the lock), never anything else a user keeps there.
    Returns the paths whose mode changed.
    """
    changed: list[Path] = []
    targets: list[tuple[Path, int]] = [(data_dir, PRIVATE_DIR_MODE)]
    logs = data_dir / "logs"
    if logs.is_dir():
        targets.append((logs, PRIVATE_DIR_MODE))
    files = [path for pattern in _DATA_FILE_PATTERNS for path in data_dir.glob(pattern)]
    files += [path for pattern in _LOG_FILE_PATTERNS for path in logs.glob(pattern)]
    targets += [(path, PRIVATE_FILE_MODE) for path in files]
    for path, wanted in targets:
        with contextlib.suppress(FileNotFoundError):  # a -wal or -shm may vanish meanwhile
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode) or stat.S_IMODE(info.st_mode) == wanted:
                continue
            path.chmod(wanted)
            changed.append(path)
    return changed
