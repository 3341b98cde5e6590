"""The model tools the window offers, in palette and menu order.

Each entry names a module whose ``create(context)`` returns a ``ToolPlugin``. Adding a tool is adding
its module and one line here; the window places whatever the tool offers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gui.tools.seam import ToolContext, ToolPlugin

TOOL_MODULES: tuple[str, ...] = (
    "gui.tools.sam",
    "gui.tools.find",
    "gui.tools.text",
    "gui.tools.attention",
    "gui.tools.search",
)


def load_tools(context: ToolContext, modules: tuple[str, ...] | None = None) -> dict[str, ToolPlugin]:
    """Create every tool in ``modules`` (default: the catalogue) with the same context, keyed by name."""
    tools: dict[str, ToolPlugin] = {}
    for module_name in TOOL_MODULES if modules is None else modules:
        plugin = importlib.import_module(module_name).create(context)
        if plugin.name in tools:
            raise ValueError(f"Two tools are named {plugin.name!r} ({module_name})")
        tools[plugin.name] = plugin
    return tools
