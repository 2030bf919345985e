"""Every event's ``ts``: RFC 3339 UTC with milliseconds, never behind the clock it
reads, even though ``now_ts`` reuses the text it made within one millisecond."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime

from hm.run.events import now_ts

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _reference() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_stamp_is_rfc3339_and_between_the_clock_readings_around_it() -> None:
    for i in range(3000):
        before, stamp, after = _reference(), now_ts(), _reference()
        assert STAMP.match(stamp), stamp
        assert before <= stamp <= after  # same format: text order is time order
        if i % 100 == 0:
            time.sleep(0.0015)  # cross millisecond and second boundaries too


def test_threads_never_see_a_torn_stamp() -> None:
    bad: list[str] = []

    def stamp() -> None:
        for _ in range(20000):
            s = now_ts()
            if not STAMP.match(s):
                bad.append(s)

    threads = [threading.Thread(target=stamp) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bad == []
