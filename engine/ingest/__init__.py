"""Bringing scans into a project."""
