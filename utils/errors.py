"""The build's one error type: it always names a file and a line."""
from __future__ import annotations

# One problem of the sources: (repository path, line, message).
Problem = tuple[str, int, str]


class SiteError(Exception):
    """A build failure at `path:line`; the message says what is wrong and how to mend it."""

    def __init__(self, path: str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


def fail(problems: list[Problem]) -> None:
    """Raise one SiteError for all `problems` (the first is its path and line), if there are any."""
    if problems:
        (path, line, message), rest = problems[0], problems[1:]
        raise SiteError(path, line, message + "".join(f"\n{p}:{n}: {m}" for p, n, m in rest))

