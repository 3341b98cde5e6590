"""Sharing the computer with the window: paused background work, fewer threads, lower priority."""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.errors import JobCancelled
from engine.jobs import CancelToken, PauseGate
from engine.models.runtime import DeviceChoice, ModelManager, cpu_threads_beside_a_window
from engine.models.service import ModelService


def test_a_paused_job_waits_at_its_next_check_and_goes_on_when_resumed() -> None:
    gate = PauseGate()
    token = CancelToken(gate)
    steps: list[int] = []

    def work() -> None:
        for step in range(3):
            token.raise_if_cancelled()
            steps.append(step)

    gate.pause("on battery")
    worker = threading.Thread(target=work)
    worker.start()
    time.sleep(0.5)
    assert steps == [] and worker.is_alive()
    CancelToken().raise_if_cancelled()  # a token without the gate (foreground work) never waits
    gate.resume()
    worker.join(2)
    assert steps == [0, 1, 2]


def test_a_paused_job_still_cancels_within_a_second() -> None:
    gate = PauseGate()
    gate.pause("on battery")
    token = CancelToken(gate)
    outcome: list[str] = []

    def work() -> None:
        try:
            token.raise_if_cancelled()
            outcome.append("ran")
        except JobCancelled:
            outcome.append("cancelled")

    worker = threading.Thread(target=work)
    worker.start()
    time.sleep(0.3)
    started = time.monotonic()
    token.cancel()
    worker.join(2)
    assert outcome == ["cancelled"] and time.monotonic() - started < 1.0


def test_a_window_keeps_a_core_from_four_up() -> None:
    assert [cpu_threads_beside_a_window(cores) for cores in (1, 2, 4, 16)] == [1, 2, 3, 15]



@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="processor affinity is Linux's")
def test_a_process_held_to_one_core_sizes_its_threads_by_that_core(tmp_path) -> None:
    """``taskset``, a scheduler or a container's CPU set: the machine's count would oversubscribe the core."""
    import subprocess

    script = ("import os; from engine.cores import usable_cores; from engine.models.runtime import "
              "cpu_threads_beside_a_window as beside; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
              "print(os.cpu_count(), usable_cores(), beside())")
    held = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parent.parent)
    machine, usable, beside_a_window = map(int, held.stdout.split())
    assert (usable, beside_a_window) == (1, 1) and machine == os.cpu_count()
    from engine.cores import usable_cores

    assert usable_cores(tmp_path / "absent") == len(os.sched_getaffinity(0))


def test_a_cpu_quota_caps_the_cores(tmp_path, monkeypatch) -> None:
    from engine.cores import usable_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(16)), raising=False)
    cpu_max = tmp_path / "cpu.max"
    for written, expected in (("200000 100000\n", 2), ("250000 100000", 3), ("50000 100000", 1),
                              ("max 100000", 16), ("garbage", 16), ("", 16)):
        cpu_max.write_text(written)
        assert usable_cores(cpu_max) == expected, written
    assert cpu_threads_beside_a_window(usable_cores(tmp_path / "none")) == 15

@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_model_threads_beside_a_window_run_at_a_lower_priority(model_store) -> None:
    model_store.add_tiny("clip-vit-b-32")
    for yielding, expected in ((False, 0), (True, 5)):
        service = ModelService(model_store, ModelManager(device=DeviceChoice("cpu"), yield_to_ui=yielding))
        niceness = service.run("clip-vit-b-32",
                               lambda _network: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        assert niceness - os.getpriority(os.PRIO_PROCESS, 0) == expected
        service.manager.unload_all()


def test_beside_a_window_a_loaded_model_is_out_of_the_collectors_reach_until_unloaded(model_store) -> None:
    """A full garbage collection over torch, transformers and a model held the interpreter for a quarter of a
    second and froze the window; the manager of an app with a window freezes what a load leaves."""
    model_store.add_tiny("clip-vit-b-32")
    def collectable(thing: object) -> bool:
        return any(tracked is thing for tracked in gc.get_objects())

    for yielding in (False, True):
        service = ModelService(model_store, ModelManager(device=DeviceChoice("cpu"), yield_to_ui=yielding))
        service.run("clip-vit-b-32", lambda _network: None)
        network = service.manager.held("clip-vit-b-32").value
        assert collectable(network) is not yielding
        del network
        older = [[]]  # made before the unload: frozen by the next load, if any, and handed back by the unload
        service.manager.unload_all()
        assert collectable(older)
