"""Node directories: a folder a process claims with an flock, with a permanent id.

A process that restarts on the same data folder claims the same folder again and so gets
the same id back: the write-ahead log names its files after it, and the job workers know
which jobs were theirs before the restart.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from openenrich.fsync import fsync_dir
from openenrich.ids import new_id


class NodeDirectory:
    """One log directory and the flock that says who owns it."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._lock_fd = lock_fd
        id_file = path / "node"
        if not id_file.exists():
            temporary = path / "node.tmp"
            temporary.write_text(new_id("wal"))
            os.replace(temporary, id_file)
            fsync_dir(path)
        self.node_id = id_file.read_text().strip()

    @staticmethod
    def _try_lock(path: Path) -> int | None:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    @classmethod
    def claim(cls, base: Path) -> NodeDirectory:
        """The first directory under `base` no live process holds."""
        for slot in range(1024):
            fd = cls._try_lock(base / str(slot))
            if fd is not None:
                return cls(base / str(slot), fd)
        raise RuntimeError(f"no free write-ahead log directory under {base}")

    @classmethod
    def orphans(
        cls, base: Path, own: NodeDirectory, has_work: Callable[[Path], bool]
    ) -> list[NodeDirectory]:
        """Directories under `base` no live process holds and that `has_work`."""
        found: list[NodeDirectory] = []
        if not base.exists():
            return found
        for path in sorted(base.iterdir()):
            if path == own.path or not path.is_dir() or not path.name.isdigit():
                continue
            if not has_work(path):
                continue
            fd = cls._try_lock(path)
            if fd is not None:
                found.append(cls(path, fd))
        return found

    def remove(self) -> None:
        """Delete an adopted directory once everything in it is in the lake."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.release()

    def release(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
