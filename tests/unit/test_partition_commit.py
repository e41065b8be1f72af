"""The partition swap: no moment without a partition, crash recovery, a real lock."""

import json
import os
import subprocess
import sys
import socket
import textwrap
import threading
import time
from pathlib import Path

import pytest

from liger_jobs.partition_commit import CommitConflict, LocalOps, PartitionCommitter

ROOT_DIR = Path(__file__).parents[2]


def partition(folder: Path, content: str) -> str:
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_text(content)
    return str(folder)


def content(folder: Path) -> str:
    return (folder / "part-0.parquet").read_text()


def kill_writer(root: Path, ops_body: str) -> tuple[int, str, str]:
    """Commit a "new" partition over an "old" one under ``root`` in a child process whose
    FileOps (``ops_body``) SIGKILLs it at a chosen step: (return code, target, staging)."""
    target = partition(root / "t" / "ds=1", "old")
    staging = partition(root / "_staging" / "t" / "ds=1-a", "new")
    script = "\n".join(
        [
            "import os, signal, sys",
            "from liger_jobs.partition_commit import LocalOps, PartitionCommitter",
            "def die():",
            "    os.kill(os.getpid(), signal.SIGKILL)",
            "class Ops(LocalOps):",
            textwrap.indent(textwrap.dedent(ops_body).strip("\n"), "    "),
            "PartitionCommitter(Ops(), sys.argv[1]).commit(sys.argv[2], sys.argv[3])",
        ]
    )
    done = subprocess.run([sys.executable, "-c", script, str(root), staging, target], cwd=ROOT_DIR)
    return done.returncode, target, staging


def test_a_writer_killed_between_the_two_renames_is_repaired_by_the_next_commit(tmp_path):
    returncode, target, staging = kill_writer(
        tmp_path,
        """
        renames = 0
        def exchange(self, first, second):
            return False  # an HDFS-like filesystem: two renames
        def rename(self, source, target):
            type(self).renames += 1
            if type(self).renames == 2:
                die()
            return super().rename(source, target)
    """,
    )
    assert returncode == -9
    assert not Path(target).exists()  # the window HDFS has: old copy aside, new one not in
    assert len(list((tmp_path / "_locks").iterdir())) == 1  # the journal survived the kill

    retry = partition(tmp_path / "_staging" / "t" / "ds=1-b", "retry")
    PartitionCommitter(LocalOps(), str(tmp_path)).commit(retry, target)
    assert content(Path(target)) == "retry"
    assert not list((tmp_path / "_locks").iterdir()) and not list((tmp_path / "_trash").iterdir())
    assert not Path(staging).exists()


def test_recovery_puts_the_old_copy_back_when_the_writer_died_mid_swap(tmp_path):
    returncode, target, staging = kill_writer(
        tmp_path,
        """
        def exchange(self, first, second):
            return False
        def rename(self, source, target):
            if "_trash" not in target:
                die()
            return super().rename(source, target)
    """,
    )
    assert PartitionCommitter(LocalOps(), str(tmp_path)).recover() == [target]
    assert content(Path(target)) == "old"


def test_on_a_local_disk_the_swap_is_one_exchange_and_a_kill_after_it_keeps_the_new_copy(tmp_path):
    returncode, target, staging = kill_writer(
        tmp_path,
        """
        def delete(self, path):
            if "_staging" in path:
                die()  # after the exchange, before the old copy is removed
            super().delete(path)
    """,
    )
    assert returncode == -9 and content(Path(target)) == "new"
    assert content(Path(staging)) == "old"
    PartitionCommitter(LocalOps(), str(tmp_path)).recover()
    assert not Path(staging).exists() and not list((tmp_path / "_locks").iterdir())


def test_readers_never_find_the_partition_missing_during_commits(tmp_path):
    target = partition(tmp_path / "t" / "ds=1", "0")
    committer = PartitionCommitter(LocalOps(), str(tmp_path))
    missing, done = [], threading.Event()

    def read_continuously():
        while not done.is_set():
            if not os.path.exists(target):
                missing.append(1)

    reader = threading.Thread(target=read_continuously)
    reader.start()
    for n in range(1, 200):
        committer.commit(partition(tmp_path / "_staging" / "t" / f"ds=1-{n}", str(n)), target)
    done.set()
    reader.join()
    assert missing == [] and content(Path(target)) == "199"


def test_a_second_live_writer_is_refused_and_a_dead_ones_lock_is_taken_over(tmp_path):
    target = partition(tmp_path / "t" / "ds=1", "old")
    committer = PartitionCommitter(LocalOps(), str(tmp_path))
    staging = partition(tmp_path / "_staging" / "t" / "ds=1-a", "new")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = Path(committer.lock_for(target))
        lock.parent.mkdir()
        lock.write_text(
            json.dumps(
                {
                    "target": target,
                    "staging": str(tmp_path / "none"),
                    "trash": str(tmp_path / "none"),
                    "host": socket.gethostname(),
                    "pid": holder.pid,
                    "started": time.time(),
                }
            )
        )
        with pytest.raises(
            CommitConflict,
            match=rf"{target} is being committed by another writer "
            rf"\(.* pid {holder.pid}\); retry the task",
        ):
            committer.commit(staging, target)
        assert content(Path(target)) == "old"
    finally:
        holder.kill()
        holder.wait()
    committer.commit(staging, target)  # the holder is dead: its lock is recovered and taken over
    assert content(Path(target)) == "new"
