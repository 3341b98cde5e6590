"""How many processor cores this process may use: not always the machine's count.

``os.cpu_count()`` counts the machine's cores. A process held to some of them (``taskset``, a job
scheduler, a container's CPU set) or given a CPU quota (a container's ``--cpus``) that sizes its
thread pools by that count runs more threads than cores, each waiting for the others: slower than
fewer threads, and it starves the window of the cores it shares them with.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" in microseconds, or "max <period>"


def usable_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The cores this process may run on (its affinity where the system tells it, else the machine's), no
    more than its CPU quota allows (rounded up: a quota of 2.5 cores keeps 3 threads busy), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # Windows and macOS have no affinity call in os
        cores = os.cpu_count() or 1
    quota = _cgroup_quota(cpu_max)
    if quota is not None:
        cores = min(cores, quota)
    return max(1, cores)


def _cgroup_quota(cpu_max: Path) -> int | None:
    try:
        quota, period = cpu_max.read_text(encoding="ascii").split()[:2]
    except (OSError, ValueError, UnicodeDecodeError):  # not Linux, cgroup v1, or unreadable: no quota known
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None
