"""The benchmark runs at a small size in CI: it must work end to end, with no assertion on timings."""

from __future__ import annotations

import json

from benchmarks.bench import SHIPPED, main, synthetic_config
from tests.plans import PROJECT


def test_synthetic_stack_has_the_requested_teams_and_endpoints() -> None:
    config, spec = synthetic_config(PROJECT, 3)
    assert config.stack == "synth3"
    assert [t.name for t in spec.teams] == ["team-000", "team-001", "team-002"]
    assert [e.team for e in spec.inference.endpoints] == [t.name for t in spec.teams]


def test_small_benchmark_run_writes_its_report(tmp_path, capsys) -> None:
    assert main(["--sizes", "1", "2", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "bench.json").read_text())
    assert [r["case"] for r in results] == [*SHIPPED, "synth1", "synth2"]
    for row in results:
        assert row["resources"] > 0 and row["peak_memory_mib"] > 0
        assert row["resources_per_second"] > 0
    output = capsys.readouterr().out
    assert "resources" in output and "bench.json" in output
