"""Whether the computer runs on its battery (for pausing background model work, when the curator asks)."""

from __future__ import annotations


def on_battery() -> bool | None:
    """``True`` on battery, ``False`` on mains power, ``None`` when unknown (a desktop, or no sensor)."""
    try:
        import psutil

        battery = psutil.sensors_battery()
    except (ImportError, RuntimeError, OSError, NotImplementedError):
        return None
    if battery is None or battery.power_plugged is None:
        return None
    return not battery.power_plugged
