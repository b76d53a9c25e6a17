"""The one exception type that means "bad input": run.py prints it on one line and exits 2."""


class XlingError(Exception):
    """A problem with the user's input (recipe, file, model, data) that the user can fix.

    The message names the problem and what to do about it; it is shown without a traceback.
    """


class ConfigError(XlingError):
    """A malformed recipe: unknown key, wrong type, missing or invalid value."""


class Unfinished(Exception):
    """A run that stopped on purpose before its end (e.g. a sweep run with --only): not an error, not finished.

    run.py prints the message, writes no metrics.json and exits 0.
    """


class InterruptReported(KeyboardInterrupt):
    """A Ctrl-C that a stage (run in this process or in a child process) has already reported to the user:
    the command stops with exit code 130 without saying it again."""
