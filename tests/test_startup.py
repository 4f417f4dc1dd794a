"""What every CLI invocation pays before its command runs: only what planning and checking need."""

from __future__ import annotations

import subprocess
import sys

from tests.plans import ROOT


def test_cli_starts_without_the_aws_sdk_the_live_commands_load_on_use() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, mlstack.cli; print(sorted(m for m in sys.modules if m.startswith(('boto3', 'botocore.config', 's3transfer'))))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()
    assert loaded == "[]"
