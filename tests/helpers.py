"""Small helpers shared by the tests."""

from __future__ import annotations

from xling.common.config import build


def with_overrides(config_cls, data: dict, over: dict):
    """Build `config_cls` from a recipe dict after setting dotted keys ("train.max_steps": 3)."""
    for key, value in over.items():
        node = data
        *parts, last = key.split(".")
        for p in parts:
            node = node.setdefault(p, {})
        node[last] = value
    return build(config_cls, data)


def never_returns(*args, **kwargs):
    """A verification that cannot finish in any time: it sleeps, swallows every exception (as math-verify
    swallows its own timeouts) and sleeps again. Module-level, so that worker processes can run it."""
    import time

    from math_verify.errors import TimeoutException

    while True:
        try:
            time.sleep(3600)
        except (Exception, TimeoutException):
            pass


def grade_number(text: str):
    """`text` graded in-process against the number 5 (a module-level function, for worker processes)."""
    from xling.grading.answers import Grader, grade

    return grade(text, "5", "en", "number", grader=Grader(workers=0))


def run_cli_captured(capsys, *args):
    """`python run.py ARGS` in this process: (exit code, stdout, stderr)."""
    from xling.runs import cli

    rc = cli.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err
