"""Marginalia's command line: a client of the engine, like the GUI."""
