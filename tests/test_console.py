"""Console width: the terminal's on a TTY, COLUMNS or a wide fixed width elsewhere, so piped output never wraps."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
import rich.console
from typer.testing import CliRunner

from mlstack.cli import app
from mlstack.console import FILE_WIDTH, PIPE_WIDTH, file_console, make_console
from mlstack.deploytime import deploy_time_summary
from tests.plans import ROOT, plan_of


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_piped_plan_keeps_every_critical_path_line_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    expected = deploy_time_summary(plan_of("prod")).splitlines()
    # The test means something only if some line would wrap at rich's fallback of 80 columns.
    assert max(len(line) for line in expected) > 80
    result = CliRunner().invoke(app, ["plan", "prod", "--out-dir", str(tmp_path), "--project-dir", str(ROOT)])
    assert result.exit_code == 0, result.output
    printed = [line.rstrip() for line in result.output.splitlines()]
    missing = [line for line in expected if line.rstrip() not in printed]
    assert not missing, f"wrapped or missing lines: {missing}"


def test_off_a_terminal_the_width_is_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert make_console(file=io.StringIO()).width == PIPE_WIDTH


def test_off_a_terminal_columns_sets_the_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "123")
    assert make_console(file=io.StringIO()).width == 123


def test_on_a_terminal_the_width_is_the_terminals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(rich.console.os, "get_terminal_size", lambda fd=0: os.terminal_size((97, 30)))
    assert make_console(file=_Tty()).width == 97


def test_force_color_does_not_shrink_a_log_to_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert make_console(file=io.StringIO()).width == PIPE_WIDTH


def test_report_files_have_a_fixed_width_and_no_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "50")
    handle = io.StringIO()
    console = file_console(handle)
    console.print("[red]" + "x" * (FILE_WIDTH - 10) + "[/]")
    assert console.width == FILE_WIDTH
    assert handle.getvalue() == "x" * (FILE_WIDTH - 10) + "\n"


def test_no_module_makes_a_console_of_its_own() -> None:
    sources = [p for folder in ("mlstack", "components", "policies") for p in (ROOT / folder).rglob("*.py")]
    makers = [
        str(p.relative_to(ROOT))
        for p in sources
        if p != ROOT / "mlstack" / "console.py" and re.search(r"\bConsole\(", p.read_text(encoding="utf-8"))
    ]
    assert not makers, f"use mlstack.console.make_console or file_console instead of Console(...): {makers}"
