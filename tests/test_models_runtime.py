"""Devices, the memory budget, thread confinement, out-of-memory fallback and run records."""

from __future__ import annotations

import threading

import pytest
import torch
from sqlalchemy import select

from engine.errors import MarginaliaError
from engine.models.runs import recent_timings, recorded_run
from engine.models.runtime import DeviceChoice, ModelManager, choose_device, half_precision_for
from engine.store.schema import ModelRun


def _linear_loader(features: int):
    # A real (tiny) torch model; it stays on the CPU, the device name is the manager's bookkeeping.
    def load(device: str) -> tuple[torch.nn.Module, int]:
        model = torch.nn.Linear(features, features).eval()
        size = sum(p.numel() * p.element_size() for p in model.parameters())
        return model, size

    return load


def test_device_choice_honours_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARGINALIA_DEVICE", "cpu")
    assert choose_device("cuda") == DeviceChoice("cpu")
    monkeypatch.setenv("MARGINALIA_DEVICE", "cuda:7")
    choice = choose_device()
    if not torch.cuda.is_available() or torch.cuda.device_count() < 8:
        assert choice.device == "cpu" and "not available" in choice.notice
    monkeypatch.setenv("MARGINALIA_DEVICE", "tpu")
    with pytest.raises(MarginaliaError, match="Unknown device"):
        choose_device()
    monkeypatch.delenv("MARGINALIA_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert choose_device().device in (expected, "mps")
    assert half_precision_for("cpu") is torch.float32


def test_models_stay_within_the_budget_least_recently_used_first() -> None:
    one = sum(p.numel() * 4 for p in torch.nn.Linear(64, 64).parameters())
    manager = ModelManager(budget_bytes=2 * one + 10, device=DeviceChoice("cpu"))
    for name in ("a", "b", "c"):
        manager.get(name, _linear_loader(64))
    assert manager.loaded() == ["b", "c"]
    manager.get("b", _linear_loader(64))  # b is now the most recent
    manager.get("d", _linear_loader(64))
    assert manager.loaded() == ["b", "d"]
    manager.unload("b")
    assert manager.loaded() == ["d"] and manager.used_bytes() == one
    manager.unload_all()


def test_each_model_runs_on_its_own_thread() -> None:
    manager = ModelManager(device=DeviceChoice("cpu"))
    names = set()

    def infer(model: torch.nn.Module) -> torch.Tensor:
        names.add(threading.current_thread().name)
        return model(torch.ones(1, 8))

    first = manager.run("m", _linear_loader(8), infer)
    second = manager.run("m", _linear_loader(8), infer)
    assert torch.equal(first, second)
    assert len(names) == 1 and next(iter(names)).startswith("model-m")
    assert threading.current_thread().name not in names
    manager.unload_all()


def test_out_of_memory_shrinks_batches_then_falls_back_to_the_cpu() -> None:
    manager = ModelManager(device=DeviceChoice("cuda"))  # as on a GPU machine; memory errors simulated
    batches: list[int] = []
    moved: list[str] = []

    def work(model: torch.nn.Module, batch):  # noqa: ANN001
        batches.append(len(batch))
        if manager.loaded() and manager._models["m"].device != "cpu":  # noqa: SLF001
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        with torch.no_grad():
            return [float(model(torch.full((1, 4), float(item))).sum()) for item in batch]

    def mover(model: torch.nn.Module, device: str) -> torch.nn.Module:
        moved.append(device)
        return model.to(device)

    results = manager.run_batches("m", _linear_loader(4), list(range(10)), work, batch_size=8, mover=mover)
    assert len(results) == 10
    assert batches[:4] == [8, 4, 2, 1] and moved == ["cpu"]
    assert any("ran out of memory" in notice for notice in manager.notices)
    manager.unload_all()


def test_every_run_is_recorded_with_its_timings(project) -> None:
    with recorded_run(project, "clip-vit-b-32", device="cpu", parameters={"batch": 4}) as run:
        run.timings["encode_s"] = 0.5
    with pytest.raises(ValueError):
        with recorded_run(project, "sam-vit-b", device="cpu", parameters={}):
            raise ValueError("bad prompt")
    with project.unit_of_work() as session:
        runs = session.scalars(select(ModelRun).order_by(ModelRun.id)).all()
    assert [(r.model_id, r.device, r.parameters) for r in runs] == [
        ("clip-vit-b-32", "cpu", {"batch": 4}), ("sam-vit-b", "cpu", {})]
    assert runs[0].timings["encode_s"] == 0.5 and runs[0].timings["total_s"] >= 0
    assert runs[1].error == "ValueError: bad prompt" and runs[1].finished_at is not None
    assert runs[0].id == run.id
    assert recent_timings(project, "clip-vit-b-32", "cpu", "encode_s") == [0.5]
    assert recent_timings(project, "sam-vit-b", "cpu", "total_s") == []  # failed runs say nothing


def test_a_family_without_an_adapter_says_so_clearly() -> None:
    from dataclasses import replace

    from engine.models.adapters import adapter_for
    from engine.models.catalogue import get_spec

    future = replace(get_spec("hi-sam-vit-b"), adapter="engine.models.adapters.not_written_yet")
    with pytest.raises(MarginaliaError, match="cannot run it yet"):
        adapter_for(future)  # a catalogue entry whose adapter module a later version brings
