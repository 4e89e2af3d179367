"""Atomic file output: write under a hidden temporary name and rename when complete, so an interrupted write
never leaves a file that looks done.  Every writer of the package (``.mvc`` files, videos, PNG folders, reports)
goes through this module.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from mvcodec.errors import InputError


class AtomicFile:
    """A file written under ``.NAME.partial`` and renamed to ``NAME`` on :meth:`commit`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise InputError(f"{self.path}: the folder {self.path.parent} does not exist")
        self.tmp = self.path.with_name(f".{self.path.name}.partial")

    def commit(self) -> None:
        """Flush the temporary file to disk and rename it to the final name."""
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Remove the temporary file."""
        self.tmp.unlink(missing_ok=True)


class CloseOnSuccess:
    """Context-manager protocol of a writer: ``close()`` when the block succeeds, ``abort()`` when it raises."""

    def close(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def abort(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield the temporary path of ``path``; on success it is renamed to ``path``, on error removed."""
    af = AtomicFile(path)
    try:
        yield af.tmp
        af.commit()
    except BaseException:
        af.abort()
        raise


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    write_atomic(path, text.encode("utf-8"))
