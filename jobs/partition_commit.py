"""Committing a staged partition so that readers and crashes never see it half-swapped.

What each filesystem gets:

- **Local (``file:``) on Linux**: the staged folder and the live partition are exchanged by
  one ``renameat2(RENAME_EXCHANGE)`` call, so at every instant the path holds the old copy or
  the new one. The first commit of a partition is a single rename.
- **HDFS** (and other filesystems whose rename is an atomic metadata operation): two renames,
  old copy aside, new copy in, after a journal is written. For the instant between the two a
  reader finds no partition; a crash between them is repaired by the next commit of any
  partition under the same root, which puts the old copy back.
- **s3a and other object stores**: rename is copy + delete, so neither step is atomic and a
  reader can see a partly copied partition. Use a table format with its own commit protocol
  (Iceberg, Delta) there; this module only keeps the journal and the lock.

Writers of one partition are serialised by a lock file created exclusively (``O_EXCL``
locally, ``create(overwrite=false)`` on Hadoop filesystems: atomic on HDFS, not on s3a). The
lock file is also the journal: it names the partition and where its old copy goes. A lock
whose writer is gone (same host and a dead pid, or older than ``STALE_AFTER_S``) is recovered
from and taken over; a live one is an error telling the second writer to retry.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

STALE_AFTER_S = 600  # a swap takes milliseconds; a lock this old belongs to a dead writer


class CommitConflict(OSError):
    """Another live writer is committing the same partition."""


class FileOps(Protocol):
    """The filesystem operations a commit needs; paths are the warehouse's URIs."""

    def exists(self, path: str) -> bool: ...
    def rename(self, source: str, target: str) -> bool: ...
    def exchange(self, first: str, second: str) -> bool: ...  # False: not supported here
    def delete(self, path: str) -> None: ...
    def mkdirs(self, path: str) -> None: ...
    def create_exclusive(self, path: str, text: str) -> bool: ...  # False: it exists
    def read_text(self, path: str) -> str | None: ...
    def list_names(self, folder: str) -> list[str]: ...


class LocalOps:
    """``file:`` paths through the OS: exclusive create and, on Linux, atomic exchange."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._renameat2 = getattr(libc, "renameat2", None)

    @staticmethod
    def local(path: str) -> str:
        return urlparse(path).path if path.startswith("file:") else path

    def exists(self, path: str) -> bool:
        return os.path.lexists(self.local(path))

    def rename(self, source: str, target: str) -> bool:
        try:
            os.rename(self.local(source), self.local(target))
        except OSError:
            return False
        return True

    def exchange(self, first: str, second: str) -> bool:
        if self._renameat2 is None:
            return False
        at_fdcwd, rename_exchange = -100, 2
        done = (
            self._renameat2(at_fdcwd, os.fsencode(self.local(first)), at_fdcwd, os.fsencode(self.local(second)), rename_exchange)
            == 0
        )
        if not done and ctypes.get_errno() not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(ctypes.get_errno(), f"could not exchange {first} and {second}")
        return done

    def delete(self, path: str) -> None:
        local = Path(self.local(path))
        if local.is_dir() and not local.is_symlink():
            shutil.rmtree(local, ignore_errors=True)
        elif os.path.lexists(local):
            local.unlink()

    def mkdirs(self, path: str) -> None:
        Path(self.local(path)).mkdir(parents=True, exist_ok=True)

    def create_exclusive(self, path: str, text: str) -> bool:
        try:
            handle = os.open(self.local(path), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        return True

    def read_text(self, path: str) -> str | None:
        try:
            return Path(self.local(path)).read_text()
        except FileNotFoundError:
            return None

    def list_names(self, folder: str) -> list[str]:
        local = Path(self.local(folder))
        return sorted(p.name for p in local.iterdir()) if local.is_dir() else []


class HadoopOps:
    """Any Hadoop FileSystem (HDFS, s3a, ...) through Spark's JVM; no atomic exchange."""

    def __init__(self, jvm, hadoop_conf) -> None:
        self._jvm = jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        self._conf = hadoop_conf

    def _fs(self, path: str):
        return self._Path(path).getFileSystem(self._conf)

    def exists(self, path: str) -> bool:
        return bool(self._fs(path).exists(self._Path(path)))

    def rename(self, source: str, target: str) -> bool:
        return bool(self._fs(source).rename(self._Path(source), self._Path(target)))

    def exchange(self, first: str, second: str) -> bool:
        return False

    def delete(self, path: str) -> None:
        self._fs(path).delete(self._Path(path), True)

    def mkdirs(self, path: str) -> None:
        self._fs(path).mkdirs(self._Path(path))

    def create_exclusive(self, path: str, text: str) -> bool:
        try:
            stream = self._fs(path).create(self._Path(path), False)
        except Exception as exc:  # py4j wraps FileAlreadyExistsException
            if "FileAlreadyExists" in str(exc) or self.exists(path):
                return False
            raise
        try:
            stream.write(bytearray(text.encode()))
        finally:
            stream.close()
        return True

    def read_text(self, path: str) -> str | None:
        if not self.exists(path):
            return None
        java_io = self._jvm.java.io
        reader = java_io.BufferedReader(java_io.InputStreamReader(self._fs(path).open(self._Path(path)), "UTF-8"))
        try:
            lines = iter(reader.readLine, None)
            return "\n".join(lines)
        finally:
            reader.close()

    def list_names(self, folder: str) -> list[str]:
        fs, hadoop_path = self._fs(folder), self._Path(folder)
        if not fs.exists(hadoop_path):
            return []
        return sorted(status.getPath().getName() for status in fs.listStatus(hadoop_path))


class PartitionCommitter:
    """Swaps staged folders into place under ``root``, with the lock/journal in ``root/_locks``."""

    def __init__(self, ops: FileOps, root: str) -> None:
        self.ops = ops
        self.locks = f"{root}/_locks"
        self.trash = f"{root}/_trash"

    def commit(self, staging: str, target: str) -> None:
        """Make ``staging`` the content of ``target``; the old copy is removed afterwards."""
        self.recover()
        lock = self.lock_for(target)
        trash = f"{self.trash}/{os.path.basename(staging)}"
        journal = {
            "target": target,
            "staging": staging,
            "trash": trash,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
        }
        self.ops.mkdirs(self.locks)
        if not self.ops.create_exclusive(lock, json.dumps(journal)):
            raise CommitConflict(f"{target} is being committed by another writer ({self._holder(lock)}); retry the task")
        try:
            self._swap(staging, target, trash)
        finally:
            self.ops.delete(lock)

    def lock_for(self, target: str) -> str:
        """The lock (and journal) file of one partition."""
        return f"{self.locks}/{hashlib.sha1(target.encode()).hexdigest()}.json"

    def _swap(self, staging: str, target: str, trash: str) -> None:
        self.ops.mkdirs(os.path.dirname(target))
        if not self.ops.exists(target):
            if not self.ops.rename(staging, target):
                raise OSError(f"could not commit {staging} to {target}")
        elif self.ops.exchange(staging, target):
            self.ops.delete(staging)  # now the old copy
        else:
            self.ops.mkdirs(self.trash)
            if not self.ops.rename(target, trash):
                raise OSError(f"could not move old partition {target} aside")
            if not self.ops.rename(staging, target):
                self.ops.rename(trash, target)  # put the old copy back rather than leave none
                raise OSError(f"could not commit {staging} to {target}")
            self.ops.delete(trash)

    def recover(self) -> list[str]:
        """Finish or undo the commits of dead writers; returns the partitions repaired."""
        repaired = []
        for name in self.ops.list_names(self.locks):
            lock = f"{self.locks}/{name}"
            journal = self._journal(lock)
            if journal is None or not self._stale(journal):
                continue
            if not self.ops.exists(journal["target"]) and self.ops.exists(journal["trash"]):
                self.ops.rename(journal["trash"], journal["target"])  # died between the two renames
            for leftover in (journal["trash"], journal["staging"]):
                if self.ops.exists(leftover):
                    self.ops.delete(leftover)
            self.ops.delete(lock)
            repaired.append(journal["target"])
        return repaired

    def _journal(self, lock: str) -> dict | None:
        text = self.ops.read_text(lock)
        try:
            return json.loads(text) if text else None
        except json.JSONDecodeError:
            return None

    @staticmethod
    def _stale(journal: dict) -> bool:
        if time.time() - float(journal.get("started", 0)) > STALE_AFTER_S:
            return True
        if journal.get("host") != socket.gethostname():
            return False
        try:
            os.kill(int(journal["pid"]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def _holder(self, lock: str) -> str:
        journal = self._journal(lock) or {}
        return f"{journal.get('host', '?')} pid {journal.get('pid', '?')}"
