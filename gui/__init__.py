"""Marginalia's desktop GUI (PySide6): a client of the engine.

Everything slow runs through one worker helper off the UI thread; the engine
never imports anything from here.
"""
