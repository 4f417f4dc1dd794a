"""Assertions on CLI runs: a failure is one clear message and an exit code, never an exception."""

from __future__ import annotations

from typer.testing import Result


def assert_clean_failure(result: Result, code: int, *words: str) -> None:
    """The command exited with ``code`` on purpose (no exception escaped) and its output holds every one of
    ``words``.

    CliRunner catches exceptions into ``result.exception`` and never prints a traceback into the output, so
    checking the output for "Traceback" proves nothing; an escaped exception is a non-SystemExit here.
    """
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"an exception escaped: {result.exception!r}\n{result.output}"
    )
    assert result.exit_code == code, f"exit code {result.exit_code}, expected {code}\n{result.output}"
    for word in words:
        assert word in result.output, f"{word!r} not in the output:\n{result.output}"
