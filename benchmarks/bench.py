"""Time `plan`, `check` and the deploy simulation for the shipped stacks, and plan and check for synthetic stacks.

Each case runs in its own process, so its peak memory (ru_maxrss) and its timings are its own: nothing is
warmed up by an earlier case except the operating system's file cache. Usage:

    python benchmarks/bench.py                  # full run: dev, staging, prod, synthetic 1/10/50/200 teams
    python benchmarks/bench.py --sizes 1 2      # small run (CI): shipped stacks plus tiny synthetic stacks
    python benchmarks/bench.py --out build/bench  # where bench.json and bench.png go (default build/bench)

The shipped stacks also run the deploy simulation (every check of ``mlstack.simulate``) with a warm render cache:
before measuring, one process renders their releases into ``build/cache/helm``, as any earlier ``mlstack
check`` would have. The gate, plan + policies + simulation, is what ``mlstack check`` costs; its target for prod
is 6 s. Synthetic stacks are not simulated (their releases would render cold).

Synthetic stacks start from prod's stack file and add N teams and N endpoints (one endpoint per team, on the
serving pool), so they exercise exactly the code real stacks do. The PNG needs matplotlib (dev extra); without
it the script says so and writes the JSON only.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mlstack.gc_thresholds import raise_thresholds  # noqa: E402
from mlstack.plan.recorder import Plan, run_program  # noqa: E402
from mlstack.project import Project  # noqa: E402
from mlstack.spec.loader import SPEC_KEY, StackConfig, parse_spec  # noqa: E402

SHIPPED = ("dev", "staging", "prod")
GATE_TARGET_SECONDS = 6.0
FULL_SIZES = (1, 10, 50, 200)


def synthetic_config(project: Project, teams: int) -> tuple[StackConfig, Any]:
    """Prod's stack file with ``teams`` teams, each owning one endpoint on the serving pool."""
    config, _ = project.load("prod")
    values = copy.deepcopy(config.values)
    platform = values[SPEC_KEY]
    platform["environment"] = f"synth{teams}"
    # Teams without a nominal GPU share (they borrow), so any number of them fits the pools' limits.
    platform["teams"] = [
        {"name": f"team-{i:03d}", "cost_center": f"cc-{i:03d}", "gpu_quota": 0} for i in range(teams)
    ]
    platform["budgets"] = {k: v for k, v in platform["budgets"].items() if k != "team_limits_usd"}
    # Prod's Qdrant writers are prod's teams, which the synthetic stack replaces.
    platform["vector_db"] = {k: v for k, v in platform["vector_db"].items() if k != "writer_teams"}
    # Each synthetic endpoint is prod's first endpoint served for another team, so it passes the same rules.
    template = {k: v for k, v in platform["inference"]["endpoints"][0].items() if k != "certificate_arn"}
    stack = f"synth{teams}"
    platform["inference"] = {
        **platform["inference"],
        "endpoints": [
            {
                **template,
                "name": f"ep-{i:03d}",
                "team": f"team-{i:03d}",
                "model": template["model"]
                .replace(f"/{template['team']}/", f"/team-{i:03d}/")
                .replace("s3://prod-", f"s3://{stack}-"),
                "image": template["image"].replace("/prod/", f"/{stack}/"),
                # Scaled to zero behind the internal endpoint (no ALB, so no certificate), so N endpoints fit
                # any GPU pool's limit.
                "exposure": "internal",
                "min_replicas": 0,
            }
            for i in range(teams)
        ],
    }
    spec = parse_spec(platform, f"synthetic {stack}", values.get("aws:region"))
    return StackConfig(source=f"synthetic:{stack}", stack=stack, values=values), spec


def run_check(plan: Plan, config: StackConfig) -> float | None:
    """Seconds `mlstack check` spends on a recorded plan, or None while the policy pack is not installed.

    The hook is the policy engine's evaluate over the plan (what `mlstack check` runs after planning).
    """
    try:
        from mlstack.check.engine import evaluate  # type: ignore[import-not-found, unused-ignore]
        from policies.catalog import ALL_RULES  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    started = time.perf_counter()
    evaluate(plan.resources, config.wire_config(), ALL_RULES)
    return time.perf_counter() - started


def run_simulation(project: Project, plan: Plan, spec: Any) -> float | None:
    """Seconds the deploy simulation spends on a recorded plan, importing its modules included (every check,
    renders from the cache), or None while the simulation is not installed."""
    started = time.perf_counter()
    try:
        from mlstack.simulate.catalog import all_checks  # type: ignore[import-not-found, unused-ignore]
        from mlstack.simulate.framework import World, run_checks  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    run_checks(World(plan, spec, project.root), all_checks())
    return time.perf_counter() - started


def warm(cases: list[str]) -> None:
    """Render the cases' releases once, so the measured runs find them in the render cache."""
    project = Project(ROOT)
    for case in cases:
        config, spec = project.load(case)
        run_simulation(project, run_program(project.program, config, spec), spec)


def measure(case: str) -> dict[str, Any]:
    """Plan (and check) one case in this process and report resources, seconds and peak memory."""
    # The collector thresholds the `mlstack` command sets for its whole process (mlstack.cli.main), so the
    # policy pack and the simulation are timed as `mlstack check` runs them. Without this only the plan ran
    # with them, and the pack and the simulation paid full collections over the provider SDKs' objects
    # (about 0.8 s of CPU time for prod, docs/benchmarks.md) that `mlstack check` never pays.
    raise_thresholds()
    project = Project(ROOT)
    if case in SHIPPED:
        config, spec = project.load(case)
    else:
        config, spec = synthetic_config(project, int(case.removeprefix("synth")))
    started = time.perf_counter()
    plan = run_program(project.program, config, spec)
    plan_seconds = time.perf_counter() - started
    check_seconds = run_check(plan, config)
    simulate_seconds = run_simulation(project, plan, spec) if case in SHIPPED else None
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    total = plan_seconds + (check_seconds or 0.0) + (simulate_seconds or 0.0)
    return {
        "case": case,
        "teams": len(spec.teams),
        "endpoints": len(spec.inference.endpoints),
        "resources": len(plan.resources),
        "plan_seconds": round(plan_seconds, 3),
        "check_seconds": None if check_seconds is None else round(check_seconds, 3),
        "simulate_seconds": None if simulate_seconds is None else round(simulate_seconds, 3),
        "seconds": round(total, 3),
        "resources_per_second": round(len(plan.resources) / total, 1) if total else None,
        "peak_memory_mib": round(peak_kib / 1024, 1),
    }


def run_all(sizes: list[int]) -> list[dict[str, Any]]:
    cases = [*SHIPPED, *(f"synth{n}" for n in sizes)]
    subprocess.run([sys.executable, __file__, "--warm", *SHIPPED], capture_output=True, check=True, cwd=ROOT)
    results = []
    for case in cases:
        output = subprocess.run(
            [sys.executable, __file__, "--one", case], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
    return results


def table(results: list[dict[str, Any]]) -> str:
    header = (
        f"{'case':<10}{'teams':>6}{'resources':>10}{'plan s':>9}{'check s':>9}{'sim s':>9}{'total s':>9}"
        f"{'res/s':>9}{'peak MiB':>10}"
    )
    lines = [header]
    for r in results:
        check = "n/a" if r["check_seconds"] is None else f"{r['check_seconds']:.2f}"
        simulate = "n/a" if r.get("simulate_seconds") is None else f"{r['simulate_seconds']:.2f}"
        lines.append(
            f"{r['case']:<10}{r['teams']:>6}{r['resources']:>10}{r['plan_seconds']:>9.2f}{check:>9}{simulate:>9}"
            f"{r['seconds']:>9.2f}{r['resources_per_second']:>9}{r['peak_memory_mib']:>10}"
        )
    return "\n".join(lines)


def gate(results: list[dict[str, Any]]) -> str | None:
    """The prod gate (plan + policies + simulation, warm render cache) against its target."""
    prod = next((r for r in results if r["case"] == "prod"), None)
    if prod is None or prod.get("simulate_seconds") is None:
        return None
    verdict = "met" if prod["seconds"] <= GATE_TARGET_SECONDS else "MISSED"
    return (
        f"prod gate (plan + policies + simulation, warm render cache): {prod['seconds']:.2f} s "
        f"(target <= {GATE_TARGET_SECONDS:.0f} s): {verdict}"
    )


def scaling(results: list[dict[str, Any]]) -> str | None:
    """Seconds per resource of the largest synthetic case over the 10-team case (target: at most 1.5)."""
    synthetic = {r["teams"]: r for r in results if r["case"].startswith("synth")}
    if 10 not in synthetic or len(synthetic) < 2:
        return None
    largest = synthetic[max(synthetic)]
    base = synthetic[10]
    ratio = (largest["seconds"] / largest["resources"]) / (base["seconds"] / base["resources"])
    return f"seconds per resource, {largest['teams']} teams vs 10 teams: {ratio:.2f}x (target <= 1.5x)"


def draw(results: list[dict[str, Any]], path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[dev]'), so no PNG was drawn"
    synthetic = sorted((r for r in results if r["case"].startswith("synth")), key=lambda r: r["resources"])
    shipped = [r for r in results if not r["case"].startswith("synth")]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot([r["resources"] for r in synthetic], [r["seconds"] for r in synthetic], "o-", label="synthetic")
    for r in shipped:
        left.plot(r["resources"], r["seconds"], "s", label=r["case"])
    left.set_xlabel("resources in the plan")
    left.set_ylabel("plan + check (+ simulation, shipped), seconds")
    left.set_title("Wall time")
    left.legend()
    right.plot([r["resources"] for r in synthetic], [r["peak_memory_mib"] for r in synthetic], "o-")
    right.set_xlabel("resources in the plan")
    right.set_ylabel("peak memory, MiB")
    right.set_title("Peak memory (ru_maxrss)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return f"wrote {path}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=list(FULL_SIZES), help="synthetic team counts"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench", help="output folder")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one case in this process
    parser.add_argument("--warm", nargs="*", help=argparse.SUPPRESS)  # internal: fill the render cache
    args = parser.parse_args(argv)
    if args.warm:
        warm(args.warm)
        return 0
    if args.one:
        print(json.dumps(measure(args.one)))
        return 0
    results = run_all(args.sizes)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    if all(r["check_seconds"] is None for r in results):
        print("check: the policy pack (mlstack.check) is not installed here, so only plan was timed")
    for note in (gate(results), scaling(results)):
        if note:
            print(note)
    print(draw(results, args.out / "bench.png"))
    print(f"wrote {args.out / 'bench.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
