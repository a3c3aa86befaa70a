"""Files and directories only their owner may read: directories 0700, files 0600, whatever
the process's umask (which may be 000). State directories, databases, the audit checkpoint
file and logs hold keys, identifiers' traces and the audit trail.

The mode is set as a file or directory is created, before its first byte is written. A
directory or database that exists already is left as it is (it is the operator's, who may
have shared it on purpose); a file this code writes through :func:`open_private` is made
0600 even if it existed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Literal

DIR_MODE = 0o700
FILE_MODE = 0o600

_FLAGS = {
    "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
}


def private_dir(path: Path) -> Path:
    """``path`` as a directory, made with any missing parents 0700 each."""
    missing: list[Path] = []
    at = path
    while not at.exists() and at != at.parent:
        missing.append(at)
        at = at.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process (which makes it 0700 too)
        os.chmod(directory, DIR_MODE)  # mkdir's mode loses what the umask takes away
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a directory")
    return path


def private_file(path: Path) -> bool:
    """Create ``path`` empty and 0600 if it does not exist (its directory must); whether it
    was created. For a file another program then opens, such as an SQLite database."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True


def open_private(path: Path, mode: Literal["wb", "ab"]) -> BinaryIO:
    """``path`` opened to write (``wb``) or append (``ab``), 0600: created so, or made so
    if it exists (the caller writes it, so it is the caller's). Its directory is made
    private if missing."""
    private_dir(path.parent)
    fd = os.open(path, _FLAGS[mode], FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # O_CREAT's mode is not applied to a file that exists
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


__all__ = ["DIR_MODE", "FILE_MODE", "open_private", "private_dir", "private_file"]
