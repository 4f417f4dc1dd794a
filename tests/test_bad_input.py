"""Bad input that used to escape as a traceback: unreadable or ambiguous stack files, and programs that fail
on a stack file that validated. Each gets one message naming the file and what to do."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlstack.cli import app
from mlstack.plan.recorder import ProgramError, run_program
from mlstack.spec.loader import SPEC_KEY, SpecError, load_spec
from mlstack.yaml_loading import DuplicateKeyError, safe_load_unique
from tests.plans import PROJECT, ROOT

DEV_TEXT = PROJECT.stack_file("dev").read_text(encoding="utf-8")


def _stack(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "Pulumi.dev.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _program(tmp_path: Path, body: str) -> Path:
    program = tmp_path / "program" / "__main__.py"
    program.parent.mkdir(exist_ok=True)
    program.write_text(body, encoding="utf-8")
    return program


def test_a_file_that_is_not_utf8_names_the_file_and_the_byte(tmp_path: Path) -> None:
    path = _stack(tmp_path, DEV_TEXT.replace("owner: ", "owner: caf\xe9 ").encode("latin-1"))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert "not UTF-8 text: byte 0xe9" in message and "save the file as UTF-8" in message


def test_a_stack_path_that_cannot_be_read_is_one_message(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.mkdir()  # a folder where the file should be: is_file() is false, so it "does not exist"
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert "does not exist" in str(caught.value)


def test_a_repeated_key_names_file_lines_and_key(tmp_path: Path) -> None:
    assert "    tier: dev\n" in DEV_TEXT
    path = _stack(tmp_path, DEV_TEXT.replace("    tier: dev\n", "    tier: dev\n    tier: prod\n"))
    line = DEV_TEXT.splitlines().index("    tier: dev") + 1
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert f"key 'tier' is repeated in one mapping (lines {line} and {line + 1})" in message
    assert f"keep one 'tier' (line {line + 1} is the repeat)" in message


def test_repeated_keys_are_refused_at_any_depth_but_merge_overrides_are_not() -> None:
    with pytest.raises(DuplicateKeyError) as caught:
        safe_load_unique("a:\n  b:\n    - {c: 1, c: 2}\n")
    assert caught.value.key == "c"
    merged = safe_load_unique("base: &b {x: 1, y: 2}\nchild:\n  <<: *b\n  x: 3\n")
    assert merged["child"] == {"x": 3, "y": 2}
    assert safe_load_unique(DEV_TEXT) == yaml.safe_load(DEV_TEXT)


def test_an_exception_in_the_program_becomes_one_program_error(tmp_path: Path) -> None:
    config, spec = PROJECT.load("dev")
    program = _program(tmp_path, "buckets = {}\nbuckets['artifacts']\n")
    with pytest.raises(ProgramError) as caught:
        run_program(program, config, spec)
    message = str(caught.value)
    assert message.splitlines() == [
        f"{config.source}: the program failed while planning stack 'dev': KeyError: 'artifacts' "
        "(raised at __main__.py:2)",
        "  this is a bug in mlstack or a stack file the spec should have refused: please report it",
    ]
    assert isinstance(caught.value, SpecError)  # so every command that reports bad stack files reports it


def test_a_run_error_is_already_a_message_for_the_user(tmp_path: Path) -> None:
    config, spec = PROJECT.load("dev")
    program = _program(tmp_path, "import pulumi\nraise pulumi.RunError('stacks/Pulumi.dev.yaml: bad')\n")
    with pytest.raises(ProgramError) as caught:
        run_program(program, config, spec)
    assert str(caught.value) == "stacks/Pulumi.dev.yaml: bad"


def test_cli_plan_reports_a_failing_program_without_a_traceback(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    (project / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (project / "__main__.py").write_text("raise ValueError('no such bucket\\nsecond line')\n")
    (project / "stacks" / "Pulumi.dev.yaml").write_text(DEV_TEXT)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["plan", "dev", "--out-dir", str(out), "--project-dir", str(project)])
    assert result.exit_code == 2, result.output
    assert "the program failed while planning stack 'dev': ValueError: no such bucket" in result.output
    assert "second line" not in result.output and "Traceback" not in result.output


def test_no_artifacts_bucket_plans_when_nothing_writes_to_it(tmp_path: Path) -> None:
    document: dict[str, Any] = copy.deepcopy(yaml.safe_load(DEV_TEXT))
    spec = document["config"][SPEC_KEY]
    spec["storage"]["buckets"] = ["datasets", "models"]
    spec["storage"]["expected_gb"].pop("artifacts")
    spec["orchestrator"] = {"argo_workflows": False, "metaflow": False}
    spec["vector_db"] = {"enabled": False}
    config, loaded = load_spec(_stack(tmp_path, yaml.safe_dump(document)))
    plan = run_program(PROJECT.program, config, loaded)
    buckets = {r.inputs["bucket"] for r in plan.by_type("aws:s3/bucket:Bucket")}
    assert buckets == {f"dev-111122223333-us-east-1-{p}" for p in ("datasets", "models", "access-logs")}
