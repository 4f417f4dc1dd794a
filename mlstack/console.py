"""The one place mlstack makes rich consoles.

On a terminal a console is as wide as the terminal. Anywhere else (CI logs, ``make plan | tee``, a file) rich
would fall back to 80 columns and wrap table rows and critical-path lines in the middle, so the width is
``COLUMNS`` when set, else a wide fixed width. The choice is made each time the width is needed, not when
the console is created: the module-level consoles outlive the stream they started on (a test runner swaps
stdout under them).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, Any

from rich.console import Console, ConsoleDimensions, ConsoleOptions, RenderableType, RenderResult

# Wide enough for the check, cost and deploy-time tables at full length; log viewers scroll sideways.
PIPE_WIDTH = 160


def pipe_width() -> int:
    """The width of output that does not go to a terminal: ``COLUMNS`` when it is a positive number, else
    :data:`PIPE_WIDTH`."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else PIPE_WIDTH


class PlatformConsole(Console):
    """A rich Console whose width is the terminal's on a TTY and :func:`pipe_width` elsewhere, unless a width
    was given."""

    @property
    def size(self) -> ConsoleDimensions:
        dimensions = super().size
        if self._width is None and not self._writes_to_tty():
            return ConsoleDimensions(pipe_width(), dimensions.height)
        return dimensions

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size

    def _writes_to_tty(self) -> bool:
        # The stream itself, not rich's is_terminal: FORCE_COLOR (common in CI) makes rich call a log a
        # terminal, and rich then measures the terminal it cannot find as 80 columns.
        isatty = getattr(self.file, "isatty", None)
        try:
            return bool(isatty is not None and isatty())
        except ValueError:  # a closed stream, e.g. at the end of a test run
            return False


def make_console(
    *, stderr: bool = False, file: IO[str] | None = None, width: int | None = None, **options: Any
) -> Console:
    """A console for command output (stdout, or stderr with ``stderr=True``) or for ``file``.

    ``width`` fixes the width whatever the stream (report files that must not depend on the environment).
    Highlighting is off: mlstack styles what it means to style, and numbers in names must not turn colours.
    """
    return PlatformConsole(stderr=stderr, file=file, width=width, highlight=False, **options)


# Report files read the same wherever they were written: a fixed width, no colour codes.
FILE_WIDTH = 200


def file_console(handle: IO[str]) -> Console:
    """A console that writes a report table to ``handle`` at :data:`FILE_WIDTH` columns, without colour."""
    return make_console(file=handle, width=FILE_WIDTH, no_color=True)


console = make_console()
"""Command output."""
errors = make_console(stderr=True)
"""Errors and warnings, on stderr so that piped output stays clean."""


# Below this many columns a report table is drawn stacked (one cell per finding, its fields on their own lines)
# instead of side by side: five bordered columns at 80 columns leave about 14 characters each, which splits
# resource names mid-word and ARNs over four lines (2026-11-30 usability review, Friction 10).
NARROW_WIDTH = 120


class ByWidth:
    """A renderable that picks its layout when it is printed, from the width it is given: ``narrow()`` below
    :data:`NARROW_WIDTH` columns, else ``wide()``. Callers keep printing one object whatever the terminal."""

    def __init__(self, wide: Callable[[], RenderableType], narrow: Callable[[], RenderableType]):
        self.wide = wide
        self.narrow = narrow

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield (self.narrow if options.max_width < NARROW_WIDTH else self.wide)()
