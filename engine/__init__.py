"""Marginalia's engine: everything that is not GUI.

The engine stores projects, imports scans, exports annotations and (in later
layers) runs the vision models. It never imports Qt; the GUI and the command
line are its clients.
"""

import os

__version__ = "0.1.0"

# onnxruntime (SAM's prompt decoder) starts Microsoft's telemetry when imported: it writes a device id and
# an event store under ~/.cache/Microsoft and may send them. A curator's collection work is nobody else's
# business, and the app writes only to its own folders. Child processes inherit the setting.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
