"""Marginalia's entry point: ``python main.py [COMMAND] ...`` (see ``--help``)."""

import sys

from cli.app import main

if __name__ == "__main__":
    sys.exit(main())
