"""Guard of `make install`: the interpreter that builds .venv must satisfy pyproject's requires-python, and a
.venv built with another interpreter is rebuilt rather than reused.

`python3.10 -m venv .venv` followed by `python3.11 -m venv .venv` leaves .venv/bin/python on 3.10 while
pyvenv.cfg claims 3.11, and pip then refuses the project forever (2026-11-30 usability review, Tried #26).
This script runs under the interpreter the Makefile was given, before that interpreter touches .venv, so it is
written for any Python from 3.7 on (no tomllib, which arrived in 3.11).

Usage: python scripts/check_python.py [--venv DIR]. Exit code 2 when the interpreter is too old.
"""

import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def required_version(pyproject):
    """The minimum (major, minor) of ``requires-python = ">=X.Y"`` in pyproject.toml."""
    with open(pyproject, encoding="utf-8") as handle:
        match = re.search(r'^requires-python\s*=\s*"\s*>=\s*(\d+)\.(\d+)', handle.read(), re.MULTILINE)
    if match is None:
        raise SystemExit('error: pyproject.toml has no requires-python = ">=X.Y"; the guard cannot check')
    return int(match.group(1)), int(match.group(2))


def venv_version(venv):
    """The (major, minor) that ``venv``/bin/python really runs, or None when it does not run at all."""
    python = os.path.join(venv, "bin", "python")
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            check=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    major, minor = out.strip().split(".")
    return int(major), int(minor)


def main(argv):
    need = required_version(os.path.join(ROOT, "pyproject.toml"))
    have = sys.version_info[:2]
    if have < need:
        sys.stderr.write(
            f"error: {sys.executable} is Python {have[0]}.{have[1]}; mlstack needs Python {need[0]}.{need[1]} or "
            f"newer (pyproject.toml requires-python). Run again with a newer one, e.g. "
            f"make plan PYTHON=python{need[0]}.{need[1]}\n"
        )
        return 2
    if len(argv) == 2 and argv[0] == "--venv":
        venv = argv[1]
        if os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
            built = venv_version(venv)
            if built != have:
                was = "a broken interpreter" if built is None else f"Python {built[0]}.{built[1]}"
                sys.stderr.write(
                    f"{venv} was built with {was}; removing it to rebuild it with Python {have[0]}.{have[1]}\n"
                )
                shutil.rmtree(venv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
