"""One error type for the whole toolkit: a cause and the fix, on one line.

The gdb layer turns it into ``gdb.GdbError`` so the user sees the message,
never a traceback.
"""


class ToolkitError(Exception):
    """A failure the user can act on: *cause* says what went wrong, *fix* what to do."""

    def __init__(self, cause: str, fix: str | None = None):
        self.cause = cause.rstrip(".")
        self.fix = fix.rstrip(".") if fix else None
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.cause}. Fix: {self.fix}." if self.fix else f"{self.cause}."


class UsageError(ToolkitError):
    """Bad command-line arguments; the message carries the usage line."""

    def __init__(self, message: str, usage: str):
        self.usage = usage.strip()
        super().__init__(message, None)

    def __str__(self) -> str:
        return f"{self.cause}\n{self.usage}"
