"""Play an AVX2-only processor on this one: a copy of ONNX Runtime held to its AVX2 kernels.

ONNX Runtime's kernel library (MLAS) picks its kernels from CPUID once, with no switch to hold it
below what the processor has, so on an AVX-512 machine every ONNX figure is an AVX-512 figure. This
copies the installed package and makes the one branch that takes MLAS's AVX-512 kernels never taken
(found by its instruction pattern; refused unless it is found exactly once in each library). The copy
is marked, and `harness.cpu_flags` says so beside every figure measured with it. Torch (its own kernels,
oneDNN's and MKL's), numpy and OpenCV have switches of their own; the printed environment sets them all.

A figure measured this way is the code an AVX2-only processor runs, at this processor's clock, cache
and memory: an older processor is slower still. Development only; the product never uses the copy.

Run without ``--hold`` it is a bench: one float32 product with MLAS's own choice of kernels and held to
AVX2, in fresh processes (how much the AVX-512 kernels give on this processor), one JSON line.

    .venv/bin/python bench/avx2_runtime.py [--smoke]
    .venv/bin/python bench/avx2_runtime.py --hold /tmp/ort-avx2
    (eval "$(.venv/bin/python bench/avx2_runtime.py --hold /tmp/ort-avx2 --env)"; .venv/bin/python bench/sam_click.py)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import HELD_TO_AVX2_MARK, add_smoke_flag, cpu_flags, emit, held_to_avx2, onnxruntime_package  # noqa: E402

# MLAS's platform set-up: `test $0x10000, <cpuid 7 ebx>` (AVX512F) ; `je <past the AVX-512 kernels>` ;
# then, within a few instructions, `test $0xe0, al` on XCR0 (the OS saves the AVX-512 state).
_AVX512_BRANCH = re.compile(
    rb"(?:\x41)?\xf7[\xc0-\xc7]\x00\x00\x01\x00(\x74).{0,12}?(?:\xa8\xe0|\xf6[\xc0-\xc7]\xe0)", re.DOTALL
)
_JMP_SHORT = 0xEB

ENVIRONMENT = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # torch's float32 products (MKL; on AMD processors it stays below AVX-512)
    "MARGINALIA_CPU_BF16": "0",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "OPENCV_CPU_DISABLE": "AVX512F,AVX512-COMMON,AVX512-SKX,AVX512-CLX",
}


class NotHeld(RuntimeError):
    """This ONNX Runtime build does not have the branch in the expected form."""


def hold_library(data: bytes) -> bytes:
    """The library with its AVX-512 kernel branch always skipped; refused unless found exactly once."""
    found = list(_AVX512_BRANCH.finditer(data))
    if len(found) != 1:
        raise NotHeld(f"the AVX-512 branch was found {len(found)} times (one expected): not this build")
    held = bytearray(data)
    held[found[0].start(1)] = _JMP_SHORT
    return bytes(held)


def make_copy(target: Path) -> None:
    """Copies the installed onnxruntime under ``target`` (the folder to put on PYTHONPATH), held to AVX2."""
    source = onnxruntime_package()
    if source is None:
        raise NotHeld("onnxruntime is not installed")
    if held_to_avx2(source):
        raise NotHeld(f"the onnxruntime imported here ({source}) is a held copy already: run without it")
    package = target / "onnxruntime"
    if package.exists():
        if not held_to_avx2(package):  # only a held copy made here before is replaced, never an installed package
            raise NotHeld(f"{package} exists and is not a held copy: choose another folder")
        shutil.rmtree(package)
    shutil.copytree(source, package, ignore=shutil.ignore_patterns("__pycache__"))
    try:
        libraries = [path for path in (package / "capi").iterdir()
                     if ".so" in path.name and path.stat().st_size > 1 << 20]
        if not libraries:
            raise NotHeld(f"no kernel library in {source / 'capi'}")
        for library in libraries:
            library.write_bytes(hold_library(library.read_bytes()))
    except BaseException:  # a copy that is not held is not left behind (it would also block the next try)
        shutil.rmtree(package, ignore_errors=True)
        raise
    (package / HELD_TO_AVX2_MARK).write_text(f"copied from {source}; MLAS's AVX-512 kernels never chosen\n")


def _measure(side: int, repeats: int, product: Path) -> dict[str, float]:
    """A [side, 256] x [256, 256] float32 product through ONNX Runtime (whichever one is imported), 2 threads."""
    import numpy as np
    import onnxruntime
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "product",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [side, 256]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [256, 256])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [side, 256])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {"a": rng.standard_normal((side, 256), np.float32), "b": rng.standard_normal((256, 256), np.float32)}
    np.save(product, session.run(None, feed)[0])
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - started)
    return {"ms": statistics.median(times) * 1000, "held": held_to_avx2(onnxruntime_package())}


def _run_measure(python_path: str | None, side: int, repeats: int, product: Path) -> dict[str, Any]:
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    if python_path:
        environment["PYTHONPATH"] = python_path
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", str(product), "--side", str(side),
               "--repeats", str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(smoke: bool) -> dict[str, Any]:
    """The same product with MLAS's own choice and held to AVX2, in fresh processes: the held copy must
    compute the same product (float rounding) and say it is held."""
    import numpy as np

    side, repeats = (512, 5) if smoke else (4096, 100)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            folder = Path(scratch) / "held"
            make_copy(folder)
        except NotHeld as error:  # another build or processor family: said, not failed
            return {"bench": "avx2_runtime", "cpu_flags": cpu_flags(), "held": False, "reason": str(error),
                    "smoke": smoke}
        native = _run_measure(None, side, repeats, Path(scratch) / "native.npy")
        held = _run_measure(str(folder), side, repeats, Path(scratch) / "held.npy")
        expected, got = np.load(Path(scratch) / "native.npy"), np.load(Path(scratch) / "held.npy")
    if native["held"] or not held["held"]:
        raise RuntimeError("the held copy was not the one imported")
    difference = float(np.abs(got - expected).max() / np.abs(expected).max())
    if difference > 1e-5:
        raise RuntimeError(f"the held copy computes another product (relative difference {difference:.1e})")
    return {"bench": "avx2_runtime", "cpu_flags": cpu_flags(), "held": True, "product": f"{side}x256x256",
            "product_ms": round(native["ms"], 3), "product_ms_held_to_avx2": round(held["ms"], 3),
            "held_vs_own_choice": round(held["ms"] / native["ms"], 2), "relative_difference": difference,
            "smoke": smoke}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", type=Path, metavar="FOLDER", help="make the held copy there and print how to use it")
    parser.add_argument("--env", action="store_true", help="with --hold: print only the shell's export lines")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--side", type=int, default=4096, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=100, help=argparse.SUPPRESS)
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(_measure(args.side, args.repeats, args.measure)))
        return 0
    try:
        if args.hold is None:
            emit(bench(args.smoke))
            return 0
        folder = args.hold.resolve()
        make_copy(folder)
    except (NotHeld, OSError) as error:
        print(f"Could not hold ONNX Runtime to AVX2: {error}", file=sys.stderr)
        return 1
    assignments = {"PYTHONPATH": str(folder), **ENVIRONMENT}
    lines = [f"export {name}={shlex.quote(value)}" for name, value in assignments.items()]
    print("\n".join(lines) if args.env else "Run a bench after:\n  " + "; ".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
