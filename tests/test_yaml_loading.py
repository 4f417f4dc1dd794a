"""fast_safe_load: libyaml's parser for the project's own data tables, with safe_load's values and safety."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlstack.catalog import ADDONS_PATH, TABLE_PATH
from mlstack.yaml_loading import fast_safe_load

ROOT = Path(__file__).resolve().parent.parent
# Every file the gate reads through fast_safe_load.
TABLES = sorted(
    [
        ROOT / "mlstack" / "simulate" / "data" / "instance_types.yaml",
        ROOT / "mlstack" / "simulate" / "data" / "eks_addon_pods.yaml",
        ROOT / "mlstack" / "data" / "aws_managed_policies.yaml",
        ROOT / "mlstack" / "data" / "metrics.yaml",
        TABLE_PATH,
        ADDONS_PATH,
        *(ROOT / "components" / "data" / "alerts").glob("*.yaml"),
    ]
)


def _typed(value: Any) -> Any:
    """The value with every scalar's type spelled out, so 1 and 1.0 or '1' and 1 do not compare equal."""
    if isinstance(value, dict):
        return {_typed(k): _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)


@pytest.mark.parametrize("path", TABLES, ids=lambda p: p.name)
def test_fast_safe_load_reads_each_table_as_safe_load_does(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    expected = yaml.safe_load(text)
    assert expected, f"{path} is empty"
    assert _typed(fast_safe_load(text)) == _typed(expected)


def test_fast_safe_load_keeps_yaml_11_scalars_and_bytes_input() -> None:
    text = "a: yes\nb: 010\nc: 1e3\nd: 2026-11-30\ne: ~\nf: '1'\n"
    assert _typed(fast_safe_load(text)) == _typed(yaml.safe_load(text))
    assert fast_safe_load(text.encode()) == yaml.safe_load(text)


def test_fast_safe_load_refuses_python_tags() -> None:
    with pytest.raises(yaml.constructor.ConstructorError):
        fast_safe_load("!!python/object/apply:os.getcwd []")
