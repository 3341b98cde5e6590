"""Marginalia's entry point: ``python main.py [COMMAND] ...`` (see ``--help``)."""

import multiprocessing
import os
import sys

if __name__ == "__main__":
    # A windowed program (the installed app on Windows and macOS) has no console: print() would fail.
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - for the process's life
    # Page decoding runs in "spawn" worker processes; in the frozen app each one starts this same
    # program, and freeze_support() turns it into the worker instead of a second app.
    multiprocessing.freeze_support()
    from cli.app import main

    sys.exit(main())
