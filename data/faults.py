"""Pause points for the crash tests: a test kills a real process exactly at a named step.

``ORIENTEER_TEST_PAUSE_AT=STEP`` makes the process that reaches ``pause_point(STEP)`` write its pid to
``$ORIENTEER_TEST_PAUSE_MARK`` (when set) and sleep ``$ORIENTEER_TEST_PAUSE_S`` seconds (default 120),
so the test can SIGKILL it there. Unset, a pause point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def pause_point(step: str) -> None:
    """Sleep at ``step`` when a test asked for it (see the module docstring)."""
    if os.environ.get("ORIENTEER_TEST_PAUSE_AT") != step:
        return
    mark = os.environ.get("ORIENTEER_TEST_PAUSE_MARK")
    if mark:
        Path(mark).write_text(str(os.getpid()), encoding="utf-8")
    time.sleep(float(os.environ.get("ORIENTEER_TEST_PAUSE_S", "120")))
