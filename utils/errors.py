"""The one error type of the build: it always names a file and a line."""


class SiteError(Exception):
    """A build failure at `path:line`; the message says what is wrong and how to mend it."""

    def __init__(self, path: str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message
