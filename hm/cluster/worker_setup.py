"""Preloaded into every worker process of a ``local:N`` cluster (Dask's ``preload``).

Those processes share hm's terminal, so a Ctrl-C there reaches them too; they must
leave it to hm, which asks each running step to stop and then closes the cluster.
Without this, the signal would kill the workers and their steps would end as
"worker died" instead of "cancelled".
"""

from __future__ import annotations

import signal
import threading
from typing import Any


def dask_setup(worker: Any) -> None:
    """Dask's preload hook: ignore the terminal's stop signals in this worker."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
