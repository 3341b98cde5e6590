"""``bench/avx2_runtime.py``: an AVX2-only processor played on this one for the benches (development only).

The copy's effect on ONNX Runtime's kernels is checked by the bench's own smoke run (``tests/test_benches.py``:
the held copy is the one imported and computes the same product); here, the byte change itself and what the
figures say about it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
import avx2_runtime  # noqa: E402
import harness  # noqa: E402

# test $0x10000,%r10d ; je +0x0e ; mov %r8,%rax ; not %rax ; test $0xe0,%al — as ONNX Runtime 1.32's MLAS has it
BRANCH = bytes.fromhex("41f7c200000100740e4c89c048f7d0a8e0")


def _library(*parts: bytes) -> bytes:
    filler = os.urandom(4096).replace(b"\xf7", b"\x90")  # no stray `test imm32` to match
    return filler.join(parts)


def test_only_the_branch_to_the_avx512_kernels_changes_to_always_skip_them() -> None:
    data = _library(b"", BRANCH, b"")
    held = avx2_runtime.hold_library(data)
    changed = [index for index, (old, new) in enumerate(zip(data, held)) if old != new]
    assert len(held) == len(data)
    assert changed == [4096 + 7]  # the `je` opcode only: same jump distance, now unconditional
    assert data[changed[0]] == 0x74 and held[changed[0]] == 0xEB


@pytest.mark.parametrize("branches", [0, 2])
def test_a_library_without_the_branch_or_with_two_is_refused(branches: int) -> None:
    with pytest.raises(avx2_runtime.NotHeld, match=f"found {branches} times"):
        avx2_runtime.hold_library(_library(b"", *([BRANCH] * branches), b""))


def test_a_folder_holding_a_package_not_made_here_is_never_replaced(tmp_path: Path) -> None:
    installed = tmp_path / "onnxruntime"
    installed.mkdir()
    (installed / "__init__.py").write_text("# someone's package\n")
    with pytest.raises(avx2_runtime.NotHeld, match="not a held copy"):
        avx2_runtime.make_copy(tmp_path)
    assert (installed / "__init__.py").read_text() == "# someone's package\n"


def test_figures_measured_with_a_held_copy_or_forced_kernels_say_so(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "onnxruntime"
    package.mkdir()
    monkeypatch.setattr(harness, "onnxruntime_package", lambda: package)
    for name in avx2_runtime.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    assert "run as" not in harness.cpu_flags()
    (package / harness.HELD_TO_AVX2_MARK).write_text("held\n")
    monkeypatch.setenv("NPY_DISABLE_CPU_FEATURES", "X86_V4")
    said = harness.cpu_flags()
    assert "onnxruntime held to AVX2" in said and "NPY_DISABLE_CPU_FEATURES=X86_V4" in said


def test_a_held_copy_is_not_held_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    held = tmp_path / "held" / "onnxruntime"
    held.mkdir(parents=True)
    (held / harness.HELD_TO_AVX2_MARK).write_text("held\n")
    monkeypatch.setattr(avx2_runtime, "onnxruntime_package", lambda: held)
    with pytest.raises(avx2_runtime.NotHeld, match="held copy already"):
        avx2_runtime.make_copy(tmp_path / "again")
    assert not (tmp_path / "again").exists()
