"""How mlstack commands end: one exit-code scheme, one-line errors, and output files checked before any work.

Exit codes, the same for every command:

- ``0`` (:data:`OK`): done, nothing to report;
- ``1`` (:data:`FINDINGS`): the command ran and found something: a mandatory policy violation, a failed
  preflight check, drift, a backend weaker than required;
- ``2`` (:data:`BAD_INPUT`): the command could not run on what it was given: an unknown option value, an
  invalid stack file, waiver file or policy config, an output path that cannot be written, no or wrong AWS
  credentials (click's own usage errors are 2 as well);
- ``3`` (:data:`INCOMPLETE`): nothing failed, but a permission was denied, so part of the work was not done
  and the result must not be read as a pass.

Messages are printed without rich markup: a regex such as ``[a-z]`` or a value such as ``"[/oops]"`` in a stack
file is shown as written, never interpreted (or rejected) as a style tag.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import typer
from rich.markup import escape

from mlstack.console import errors

OK = 0
FINDINGS = 1
BAD_INPUT = 2
INCOMPLETE = 3

EXIT_CODES = {
    OK: "done, nothing to report",
    FINDINGS: "findings: a mandatory policy violation, a failed check, drift, or a backend weaker than required",
    BAD_INPUT: "bad input: an unknown option value, an invalid stack, waiver or config file, an output path "
    "that cannot be written, missing or wrong AWS credentials",
    INCOMPLETE: "incomplete: nothing failed, but a denied permission left part of the work undone",
}
"""Each exit code and what it means, for help texts and the docs."""


def report_error(message: str) -> None:
    """Print ``error: message`` on stderr, the message taken literally (no rich markup)."""
    errors.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def fail(message: str, code: int = BAD_INPUT) -> typer.Exit:
    """Report ``message`` and return the exit to raise: ``raise fail(...) from None``."""
    report_error(message)
    return typer.Exit(code)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _cannot(directory: Path, option: str, reason: str) -> typer.Exit:
    return fail(
        f"cannot create the output directory {directory} ({option}): {reason}; "
        f"fix: give {option} a location in a directory you can write"
    )


def prepare_output_dir(directory: Path, option: str) -> Path:
    """Check, before any planning, that ``directory`` exists or can be created; stop with one clear error
    naming it otherwise.

    Nothing is created yet (a failing command leaves no empty directory behind): the nearest existing
    ancestor must be a directory this process may write. :func:`write_output` creates what is missing.
    """
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise _cannot(directory, option, f"{existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "to write in it" if existing == directory else f"to create it in {existing}"
        raise _cannot(directory, option, f"no permission {where}")
    return directory


def prepare_output_file(path: Path, option: str) -> Path:
    """Check, before any work, that ``path`` can be written: its directory exists or can be created, and
    ``path`` is not a directory."""
    prepare_output_dir(path.parent, option)
    if path.is_dir():
        raise fail(
            f"cannot write {path} ({option}): it is a directory; fix: give {option} a file name, "
            f"e.g. {path / 'report.txt'}"
        )
    return path


def write_output(path: Path, text: str, option: str) -> None:
    """Write ``text`` to ``path``, turning an OS error into one clear line and exit code 2."""
    with open_output(path, option) as handle:
        handle.write(text)


@contextmanager
def open_output(path: Path, option: str) -> Iterator[IO[str]]:
    """Open ``path`` for writing, creating its directory; an OS error becomes one clear line and exit code 2."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            yield handle
    except OSError as exc:
        raise fail(
            f"cannot write {path} ({option}): {_reason(exc)}; fix: give {option} a file you can write"
        ) from None
