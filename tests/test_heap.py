"""Freed tensors' memory kept in the heap while models run on the CPU, and given back after."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.models import heap

REPO = Path(__file__).resolve().parents[1]
# glibc's own defaults, whatever the environment tunes (MALLOC_*_ environment variables, GLIBC_TUNABLES)
PLAIN_ENVIRONMENT = {name: value for name, value in os.environ.items()
                     if not name.startswith("MALLOC_") and name != "GLIBC_TUNABLES"}
pytestmark = pytest.mark.skipif(heap._glibc() is None, reason="the heap is tuned on glibc (Linux) only")

ALLOCATIONS = """
import resource
import numpy as np
from engine.models import heap

def churn(rounds):
    for _ in range(rounds):
        for megabytes in (6, 12, 24, 3, 18):  # tensor-sized blocks, freed and made again
            a = np.ones(megabytes * 1024**2 // 8); b = np.ones(megabytes * 1024**2 // 8); del a, b

if {keep}:
    assert heap.keep_freed_memory()
churn(3)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn(20)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(keep: bool) -> int:
    done = subprocess.run([sys.executable, "-c", ALLOCATIONS.format(keep=keep)], capture_output=True, text=True,
                          check=True, timeout=60, cwd=REPO, env=PLAIN_ENVIRONMENT)
    return int(done.stdout.split()[-1])


def test_kept_freed_memory_spares_the_page_faults_of_tensors_made_again() -> None:
    plain, kept = _page_faults(False), _page_faults(True)
    assert plain > 10_000  # each block faulted in again, page by page
    assert kept < plain / 10


GIVE_BACK = """
import numpy as np
from engine.models import heap

def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096

assert heap.keep_freed_memory()
blocks = [np.ones(8 * 1024**2 // 8) for _ in range(40)]  # 320 MB in the heap
del blocks
held = resident()
assert heap.give_back_freed_memory()
print(held - resident())
"""


def test_the_freed_memory_goes_back_to_the_system_when_asked() -> None:
    done = subprocess.run([sys.executable, "-c", GIVE_BACK], capture_output=True, text=True, check=True, timeout=60,
                          cwd=REPO, env=PLAIN_ENVIRONMENT)
    assert int(done.stdout.split()[-1]) > 200 * 1024**2


def test_a_model_on_the_cpu_keeps_the_heap_and_its_unload_gives_back(model_store, monkeypatch) -> None:
    from engine.models.runtime import DeviceChoice, ModelManager
    from engine.models.service import ModelService

    calls: list[str] = []
    monkeypatch.setattr("engine.models.runtime.keep_freed_memory", lambda: calls.append("keep") or True)
    monkeypatch.setattr("engine.models.runtime.give_back_freed_memory", lambda: calls.append("give back") or True)
    model_store.add_tiny("dino-vits16")
    service = ModelService(model_store, ModelManager(device=DeviceChoice("cpu")))
    service.run("dino-vits16", lambda network: None)
    assert calls == ["keep"]
    service.manager.unload_all()
    assert calls == ["keep", "give back"]
