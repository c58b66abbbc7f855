"""Named points where a test can make a run die or fail, set by ADFORGE_FAULT.

ADFORGE_FAULT="kill:copy-written:2" kills the process with SIGKILL the 2nd time that point is
reached; "raise:generate-copy:1" raises there instead. Unset, every point is a no-op.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_reached: Counter[tuple[str, str]] = Counter()  # (ADFORGE_FAULT, point): a new setting counts anew


class InjectedFault(RuntimeError):
    """The failure a test asked for."""


def fault_point(name: str) -> None:
    spec = os.environ.get("ADFORGE_FAULT")
    if not spec:
        return
    _reached[spec, name] += 1
    count = _reached[spec, name]
    for fault in spec.split(","):
        action, point, nth = fault.split(":")
        if point == name and (nth == "*" or count == int(nth)):
            if action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise InjectedFault(f"injected fault at {name} #{count}")
