"""What the isolation tests share: a run that can be checked for leftovers.

Every process a run starts inherits hm's environment, so a run started with a
unique ``HM_TEST_RUN_TAG`` can be found in the process table afterwards (hm's
workers, step supervisors, steps and anything they left behind); ``HM_WORK_DIR``
points at a private folder so its run directories can be counted.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "run"))

from run_helpers import events, hm_env

__all__ = ["RunTrace", "events", "hm_env", "tagged_processes"]


def tagged_processes(tag: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose environment holds ``tag``."""
    needle = f"HM_TEST_RUN_TAG={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if state != b"Z" and needle in environ.split(b"\0"):
            found.append((int(entry), cmdline))
    return found


class RunTrace:
    """Environment for one run, and the checks that it left nothing behind."""

    def __init__(self, tmp_path: Path) -> None:
        self.tag = uuid.uuid4().hex
        self.tmpdir = tmp_path / "tmp"
        self.tmpdir.mkdir(exist_ok=True)
        self.env = {"HM_TEST_RUN_TAG": self.tag, "HM_WORK_DIR": str(self.tmpdir), "TMPDIR": str(self.tmpdir)}

    def processes(self, wait: float = 5.0) -> list[tuple[int, str]]:
        """The run's processes still alive after up to ``wait`` seconds."""
        deadline = time.monotonic() + wait
        while True:
            left = tagged_processes(self.tag)
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.05)

    def run_dirs(self, wait: float = 5.0) -> list[str]:
        deadline = time.monotonic() + wait
        while True:
            left = [p.name for p in self.tmpdir.iterdir() if p.name.startswith("hm-run-")]
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.05)

    def assert_clean(self, wait: float = 5.0) -> None:
        assert self.processes(wait) == [], "processes of the run outlived it"
        assert self.run_dirs(wait) == [], "the run's directory outlived it"

    def kill_leftovers(self) -> None:
        for pid, _ in tagged_processes(self.tag):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
