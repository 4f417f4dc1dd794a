"""`make install`'s interpreter guard (scripts/check_python.py) and `make distclean` (issue 18: a wrong Python
left a .venv that later runs could not repair, and `make clean` kept it)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.plans import ROOT


def _old_python() -> str | None:
    """A Python 3.10 that really runs (a pyenv shim may exist without one), or None."""
    for candidate in (
        shutil.which("python3.10"),
        *map(str, Path("/root/.pyenv/versions").glob("3.10*/bin/python3.10")),
    ):
        if (
            candidate
            and subprocess.run(
                [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 10)"],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        ):
            return candidate
    return None


OLD_PYTHON = _old_python()


def _guard() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_python", ROOT / "scripts" / "check_python.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_venv(path: Path, prints: str) -> Path:
    (path / "bin").mkdir(parents=True)
    (path / "pyvenv.cfg").write_text("version = 3.11.2\n")  # what `venv` over an old .venv leaves behind
    python = path / "bin" / "python"
    python.write_text(f"#!/bin/sh\necho {prints}\n")
    python.chmod(0o755)
    return path


def test_too_old_python_is_refused_before_anything_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    guard = _guard()
    assert guard.required_version(ROOT / "pyproject.toml") == (3, 11)
    monkeypatch.setattr(sys, "version_info", (3, 10, 13, "final", 0))
    assert guard.main(["--venv", str(tmp_path / ".venv")]) == 2
    assert "mlstack needs Python 3.11 or newer" in capsys.readouterr().err
    assert not (tmp_path / ".venv").exists()


def test_a_venv_built_by_another_python_is_removed_for_rebuilding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = _fake_venv(tmp_path / ".venv", "3.10")
    assert _guard().main(["--venv", str(venv)]) == 0
    assert not venv.exists()
    assert "was built with Python 3.10; removing it" in capsys.readouterr().err


def test_a_venv_of_the_same_python_is_kept(tmp_path: Path) -> None:
    venv = _fake_venv(tmp_path / ".venv", f"{sys.version_info[0]}.{sys.version_info[1]}")
    assert _guard().main(["--venv", str(venv)]) == 0
    assert (venv / "bin" / "python").exists()


def test_a_folder_that_is_not_a_venv_is_never_removed(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-venv"
    folder.mkdir()
    assert _guard().main(["--venv", str(folder)]) == 0 and folder.exists()


@pytest.mark.skipif(
    not Path(OLD_PYTHON).exists() or not shutil.which("make"), reason="needs python3.10 and make"
)
def test_make_install_with_an_old_python_stops_with_exit_2_and_creates_nothing(tmp_path: Path) -> None:
    venv = tmp_path / ".venv"
    run = subprocess.run(
        ["make", "-C", str(ROOT), "install", f"PYTHON={OLD_PYTHON}", f"VENV={venv}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0 and "needs Python 3.11 or newer" in run.stderr
    assert not venv.exists()


def test_distclean_removes_the_venv_and_clean_keeps_it() -> None:
    def dry(target: str) -> str:
        return subprocess.run(
            ["make", "-n", "-C", str(ROOT), target, "VENV=.venv-test"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    assert "rm -rf .venv-test" in dry("distclean")
    assert ".venv-test" not in dry("clean")
