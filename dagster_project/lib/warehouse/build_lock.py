"""One build at a time per $DAGSTER_HOME, and a proof that a leftover run is dead.

Pure library code (no Dagster imports). Every CLI build holds an exclusive `fcntl.flock` on
`$DAGSTER_HOME/cli_build.lock` for its whole build (its runs carry its pid in the tag
CLI_PID_TAG), and every other run (launched from the UI, a sensor or the schedule) holds it
for the run (defs/resources.py): runs, not steps, take turns on the one working copy. The kernel drops the lock when the holding
process dies, however it dies (kill -9, OOM, a reboot, a container restart), whatever its pid
becomes afterwards. So a build that holds the lock knows that no other CLI build of this
$DAGSTER_HOME is alive: any run the CLI tagged that is still "started" is a dead one, even if
its pid now belongs to some other live process (pids are reused, most of all after a
container restart).

The holder writes its pid into the file, only to say who is running in the message of a build
that has to wait. The file is never deleted: removing it while it is held would let a second
build lock a new file of the same name.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path
from typing import Callable

LOCK_NAME = "cli_build.lock"
CLI_PID_TAG = "customs/cli_pid"  # on the runs of a CLI build: the pid of the process holding the lock


class BuildLockTimeout(RuntimeError):
    """Another build held the lock for longer than the caller was willing to wait."""

    def __init__(self, path: Path, holder: int | None, waited: float):
        self.path, self.holder, self.waited = path, holder, waited
        who = f"pid {holder}" if holder else "pid unknown"
        super().__init__(f"another build ({who}) has been running for the {waited:.0f} s we waited; it holds {path}")


class BuildLock:
    """An exclusive, process-lifetime lock on `path` (flock: released by the kernel on death)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fd: int | None = None

    @classmethod
    def for_dagster_home(cls, home: str | os.PathLike) -> "BuildLock":
        return cls(Path(home) / LOCK_NAME)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def fileno(self) -> int:
        """The locked descriptor (held only): a process it is passed to holds the lock too, until it closes it."""
        if self._fd is None:
            raise RuntimeError(f"{self.path} is not held")
        return self._fd

    def holder_pid(self) -> int | None:
        """The pid the current (or last) holder wrote; None when unknown. A message detail only."""
        try:
            text = self.path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False (at once) when another process holds it."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Not inherited by subprocesses (dbt): the lock lives and dies with this process.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError:
            pass  # the pid is only for messages
        self._fd = fd
        return True

    def acquire(
        self,
        timeout: float | None = None,
        on_wait: Callable[[int | None], None] | None = None,
        poll: float = 0.25,
    ) -> None:
        """Take the lock, waiting for the holder to finish if there is one.

        `on_wait(holder_pid)` is called once, when the lock is found busy. `timeout` None waits
        as long as it takes; a number of seconds (0: do not wait) raises BuildLockTimeout.
        """
        if self.try_acquire():
            return
        if on_wait is not None:
            on_wait(self.holder_pid())
        started = time.monotonic()
        while True:
            waited = time.monotonic() - started
            if timeout is not None and waited >= timeout:
                raise BuildLockTimeout(self.path, self.holder_pid(), waited)
            time.sleep(poll if timeout is None else max(0.0, min(poll, timeout - waited)))
            if self.try_acquire():
                return

    def hand_over(self, pid: int) -> None:
        """Leave the lock to process `pid`, which was given a copy of the descriptor (`fileno`):
        its pid goes in the file, and this process's descriptor is closed."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{pid}\n".encode("ascii"), 0)
        except OSError:
            pass  # the pid is only for messages
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> "BuildLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
