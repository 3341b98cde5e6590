"""What takes the room in a frozen app folder: the total and the largest parts, one per line.

    python packaging/sizes.py dist/Marginalia
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# Groups by path prefix inside _internal: the parts worth knowing the size of.
GROUPS = (("nvidia", "CUDA libraries (nvidia/*)"), ("torch", "PyTorch"), ("PySide6", "Qt (PySide6)"),
          ("cv2", "OpenCV"), ("onnxruntime", "onnxruntime"), ("transformers", "transformers"),
          ("faiss", "faiss"), ("pyvips_binary.libs", "libvips"), ("torchvision", "torchvision"))


def sizes(folder: Path) -> tuple[int, Counter[str]]:
    parts: Counter[str] = Counter()
    total = 0
    internal = folder / "_internal"
    for path in folder.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        size = path.stat().st_size
        total += size
        relative = path.relative_to(internal).as_posix() if path.is_relative_to(internal) else ""
        group = next((label for prefix, label in GROUPS if relative.startswith(prefix)), "everything else")
        parts[group] += size
    return total, parts


def main() -> None:
    folder = Path(sys.argv[1])
    total, parts = sizes(folder)
    print(f"{folder.name}: {total / 1e9:.2f} GB in all")
    for label, size in parts.most_common():
        print(f"  {label}: {size / 1e6:,.0f} MB")


if __name__ == "__main__":
    main()
