"""Marginalia's engine: everything that is not GUI.

The engine stores projects, imports scans, exports annotations and (in later
layers) runs the vision models. It never imports Qt; the GUI and the command
line are its clients.
"""

__version__ = "0.1.0"
