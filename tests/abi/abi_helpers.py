"""Helpers of the ABI tests: the ``hm run`` helpers of tests/run, importable here.

pytest puts each test folder on ``sys.path`` under rootdir-less imports; tests/run
is not this folder, so it is added (as tests/isolation/iso_helpers.py does).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "run"))
