"""The one error type of the dataset readers: it always names the offending file."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DatasetError"]


class DatasetError(ValueError):
    """A dataset file or folder that cannot be used, with the path that caused it.

    A ValueError so that callers that already catch bad input keep working; ``path``
    is kept separately so tools can report or skip the file without parsing text.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
