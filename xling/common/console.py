"""Terminal output: one rich console, tables, and the one-line error format."""

from __future__ import annotations

import shutil
import sys
from typing import Callable, Iterable, Sequence

from rich import box
from rich.console import Console
from rich.table import Table

# Without a terminal (a log, a pipe) rich would wrap every line at 80 columns: there the console is 160 wide
# and soft-wraps (a line longer than that is written whole, never broken mid-sentence), and a table wider than
# that gets the width it needs (print_table).
_width = None if sys.stdout.isatty() else max(shutil.get_terminal_size((160, 24)).columns, 160)
console = Console(width=_width, highlight=False, soft_wrap=not sys.stdout.isatty())
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160, highlight=False,
                      soft_wrap=not sys.stderr.isatty())


def print_error(message: str) -> None:
    err_console.print(f"error: {message}", markup=False, soft_wrap=True)


def module_main(work: Callable[[], int | None]) -> int:
    """The body of a `python -m` entry point: `work()`'s exit code (0 when it returns None); an
    `XlingError` is printed as one line and gives exit code 2."""
    from xling.common.errors import XlingError

    try:
        return work() or 0
    except XlingError as e:
        print_error(str(e))
        return 2


def fmt(value: float | None, digits: int = 3, none: str = "None") -> str:
    """A number for a table; an undefined value is shown as 'None', as the paper does."""
    if value is None:
        return none
    return f"{value:.{digits}f}"


def fmt_ci(value: float | None, ci: Sequence[float | None] | None, digits: int = 3) -> str:
    if value is None:
        return "None"
    if not ci or ci[0] is None or ci[1] is None:
        return fmt(value, digits)
    return f"{value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]], note: str | None = None) -> None:
    """A table under its title, then its note. The title and the note are lines of their own (rich would wrap
    a title to the table's width); in a log or a pipe nothing is wrapped or cut."""
    table = Table(box=box.SIMPLE_HEAD)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*[str(c) for c in row])
    from rich.measure import Measurement

    wide = Measurement.get(console, console.options.update(width=10_000), table).maximum
    width = console.width
    if wide > width and not console.is_terminal:  # in a log or a pipe, a wide table is never cut to "…"
        console.width = wide
    try:
        console.print(title, markup=False, style="bold")
        console.print(table)
    finally:
        console.width = width
    if note:
        console.print(note, markup=False, style="dim")
