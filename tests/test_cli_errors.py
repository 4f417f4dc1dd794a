"""Bad input on the command line: one clear message (what, where, how to fix), a non-zero exit code, no
exception, and nothing written half-way."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlstack.cli import app
from mlstack.failures import BAD_INPUT, EXIT_CODES, FINDINGS, INCOMPLETE, OK
from tests.cli import assert_clean_failure
from tests.plans import ROOT

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's program and stack files that a test may change."""
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "stacks", copy / "stacks")
    return copy


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    """A regular file: any path under it cannot be created, on every platform."""
    path = tmp_path / "afile"
    path.write_text("not a directory\n")
    return path


def _replace_in_stack(project: Path, stack: str, old: str, new: str) -> None:
    path = project / "stacks" / f"Pulumi.{stack}.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["plan", "dev", "--out-dir", "{bad}/plans"], "--out-dir"),
        (["check", "dev", "-f", "json", "-o", "{bad}/x.json"], "--output"),
        (["check", "dev", "-o", "{bad}/x.txt"], "--output"),
        (["schema", "--out", "{bad}/schema.json"], "--out"),
        (["graph", "dev", "--image", "none", "--out-dir", "{bad}/graphs"], "--out-dir"),
    ],
    ids=["plan", "check-json", "check-table", "schema", "graph"],
)
def test_an_unwritable_output_location_is_one_clear_error(a_file: Path, args: list[str], option: str) -> None:
    argv = [arg.format(bad=a_file) for arg in args] + (
        ["--project-dir", str(ROOT)] if args[0] != "schema" else []
    )
    result = runner.invoke(app, argv)
    assert_clean_failure(result, BAD_INPUT, "error:", f"{a_file}", option, f"fix: give {option}")
    assert a_file.read_text() == "not a directory\n"


def test_an_output_path_that_is_a_directory_is_one_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema", "--out", str(tmp_path)])
    assert_clean_failure(result, BAD_INPUT, f"cannot write {tmp_path} (--out): it is a directory")


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_check_creates_the_directory_of_its_report(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "new" / "dir" / f"report.{fmt}"
    result = runner.invoke(app, ["check", "dev", "-f", fmt, "-o", str(out), "--project-dir", str(ROOT)])
    assert result.exit_code == OK, result.output
    assert "dev" in out.read_text()


def test_plan_all_writes_nothing_when_one_stack_is_invalid(project: Path, tmp_path: Path) -> None:
    # staging is planned last, so a plan written stack by stack would already have left dev and prod behind.
    _replace_in_stack(project, "staging", 'account_id: "', 'account_id: "x')
    out = tmp_path / "plans"
    result = runner.invoke(app, ["plan", "--all", "-q", "--out-dir", str(out), "--project-dir", str(project)])
    assert_clean_failure(result, BAD_INPUT, "stacks/Pulumi.staging.yaml", "account_id")
    assert not list(out.glob("*")), "nothing may be written when a stack is invalid"


def test_plan_all_writes_every_stack(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "plans"
    result = runner.invoke(app, ["plan", "--all", "-q", "--out-dir", str(out), "--project-dir", str(project)])
    assert result.exit_code == OK, result.output
    assert sorted(p.name for p in out.iterdir()) == ["plan-dev.json", "plan-prod.json", "plan-staging.json"]


def test_markup_characters_in_a_stack_value_are_shown_as_written(project: Path) -> None:
    _replace_in_stack(project, "dev", "cost_center: ml-platform-1001", 'cost_center: "[/oops]"')
    for command in ("plan", "validate", "check", "cost"):
        result = runner.invoke(app, [command, "dev", "--project-dir", str(project)])
        # The pattern hint keeps its brackets: a regex is not a style tag.
        assert_clean_failure(result, BAD_INPUT, "error:", "[/oops]", "[A-Za-z0-9_.:-]")


def test_markup_characters_in_a_stack_name_are_shown_as_written() -> None:
    result = runner.invoke(app, ["plan", "a[/b]", "--project-dir", str(ROOT)])
    assert_clean_failure(result, BAD_INPUT, "no stack file stacks/Pulumi.a[/b].yaml")


def test_validate_exits_2_on_an_invalid_stack_file_like_every_command(project: Path) -> None:
    _replace_in_stack(project, "dev", 'account_id: "', 'account_id: "x')
    result = runner.invoke(app, ["validate", "--all", "--project-dir", str(project)])
    assert_clean_failure(result, BAD_INPUT, "stacks/Pulumi.dev.yaml", "account_id", "ok")


def test_exit_codes_are_distinct_and_documented() -> None:
    assert [OK, FINDINGS, BAD_INPUT, INCOMPLETE] == sorted(EXIT_CODES) == [0, 1, 2, 3]
    reference = (ROOT / "docs" / "reference" / "cli.md").read_text()
    for code, meaning in EXIT_CODES.items():
        assert f"| `{code}` | {meaning} |" in reference, "run `make docs` to regenerate"


def test_plan_all_writes_nothing_when_a_later_program_run_fails(project: Path, tmp_path: Path) -> None:
    # A valid stack file whose program run fails: the earlier stacks' plans must not be written either.
    program = project / "__main__.py"
    program.write_text(
        "import pulumi\n"
        "if pulumi.get_stack() == 'staging':\n"
        "    raise RuntimeError('staging program failed')\n" + program.read_text()
    )
    out = tmp_path / "plans"
    result = runner.invoke(app, ["plan", "--all", "-q", "--out-dir", str(out), "--project-dir", str(project)])
    assert result.exit_code != OK
    assert "staging program failed" in str(result.exception)
    assert not out.exists()
