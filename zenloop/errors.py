"""What a user can fix, told apart from a bug.

A `UserError` is said in one line by the command line (a bad config, bad data, a busy
port, a failed run with its step's error); anything else is a bug and shows its
traceback. `zenloop --debug` shows the traceback of both.
"""


class UserError(Exception):
    """A problem the user can fix; the message says what and where."""


class OperationError(UserError, RuntimeError):
    """An operation could not be done as asked: a port is busy, a process is not running,
    a server did not come up; the message says what to do."""
