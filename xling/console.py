"""Terminal output: one rich console, tables, and the one-line error format."""

from __future__ import annotations

import shutil
import sys
from typing import Iterable, Sequence

from rich import box
from rich.console import Console
from rich.table import Table

_width = None if sys.stdout.isatty() else max(shutil.get_terminal_size((160, 24)).columns, 160)
console = Console(width=_width, highlight=False)
err_console = Console(stderr=True, width=_width, highlight=False)


def print_error(message: str) -> None:
    err_console.print(f"error: {message}", markup=False, soft_wrap=True)


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
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, title_style="bold")
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
        console.print(table)
    finally:
        console.width = width
    if note:
        console.print(note, markup=False, style="dim")
