"""Errors a curator can read.

Every error the engine raises on purpose derives from :class:`MarginaliaError`
and carries a message written for the person at the screen, not a developer.
Clients print ``str(error)`` and nothing else unless asked for debug output.
"""


class MarginaliaError(Exception):
    """An expected failure with a message fit for the user."""


class ProjectError(MarginaliaError):
    """The project folder is missing, not a project, or cannot be opened."""


class ProjectVersionError(ProjectError):
    """The project was written by a newer Marginalia than this one."""


class ProjectBusyError(ProjectError):
    """Another process held the project's database for longer than this one would wait."""


class ProjectReadOnlyError(ProjectError):
    """The project is open read-only (its folder or database cannot be written)."""


class CocoFormatError(MarginaliaError):
    """A COCO file is not valid JSON or not a COCO dataset."""


class JobCancelled(MarginaliaError):
    """The user cancelled a long-running job; work done so far is kept."""

    def __init__(self, message: str = "Cancelled; the work done so far is kept.") -> None:
        super().__init__(message)


class StaleEditError(MarginaliaError):
    """Someone else changed what this edit was made on since it was seen: the edit was refused, not applied."""

    def __init__(self, message: str, ids: list[int]) -> None:
        super().__init__(message)
        self.ids = ids


class ConnectionLostError(ProjectError):
    """The team database could not be reached for this unit of work; nothing of it was saved."""
