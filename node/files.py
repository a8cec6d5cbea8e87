"""Private by default on disk: the one home of the modes the program gives its files.

Everything under the data dir holds national records, personal data or secrets, so the data dir is
0700 and every file the program writes is 0600, whatever the umask (``ncc`` also sets ``umask 077``
at start: SQLite creates its WAL and SHM files itself). ``check_private`` is what ``ncc serve`` (and
the other commands) run at start: a file readable by group or others is refused with one line naming
the file and the fix, as the instance key always was.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700


class FileModeError(Exception):
    """A file of the instance is readable or writable by group or others; the message says the fix."""


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed; the directory itself ends 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


def write_private(path: Path, data: bytes | str, *, exclusive: bool = False) -> None:
    """Write ``data`` atomically to ``path`` with mode 0600 (a temporary file renamed over it).

    Raises:
        FileExistsError: ``exclusive`` and ``path`` exists.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        _write_all(fd, raw)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        _write_all(fd, raw)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_all(fd: int, raw: bytes) -> None:
    os.fchmod(fd, FILE_MODE)  # an existing temporary file keeps its mode otherwise
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())


def open_private(path: Path, mode: str = "w", **kwargs: Any) -> IO[Any]:
    """``open(path, mode)`` for a new or truncated file, created 0600 (exports, outbox messages)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    if "x" in mode:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fd = os.open(path, flags, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, mode.replace("x", "w"), **kwargs)


def check_private(path: Path) -> None:
    """Refuse a file or directory of the instance that group or others may read or write.

    Raises:
        FileModeError: one line naming ``path`` and the ``chmod`` that fixes it.
    """
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        return  # an operator's symlink (e.g. a database on another disk): its target is theirs to guard
    if st.st_mode & 0o077:
        want = "700" if stat.S_ISDIR(st.st_mode) else "600"
        raise FileModeError(f"{path} must not be readable by group or others (chmod {want}); its mode is "
                            f"{stat.S_IMODE(st.st_mode):o}, fix: chmod {want} {path}")


def instance_files(data_dir: Path) -> Iterator[Path]:
    """The data dir and what the program keeps in it: config, keys, secrets, the SQLite database."""
    yield data_dir
    for name in ("config.toml", "ncc.db", "ncc.db-wal", "ncc.db-shm", "ncc.db-journal", "keys", "outbox"):
        yield data_dir / name
    keys = data_dir / "keys"
    if keys.is_dir():
        yield from sorted(keys.rglob("*"))


def check_instance_files(data_dir: Path, extra: Iterable[Path] = ()) -> None:
    """``check_private`` over the data dir, its config, keys, secrets and database files.

    Raises:
        FileModeError: the first file too widely readable.
    """
    for path in (*instance_files(data_dir), *extra):
        check_private(path)
