"""The offline plan: recorded faithfully, deterministic, and shaped by the component conventions."""

from __future__ import annotations

import asyncio
import gc
import json
import re
from pathlib import Path

from typer.testing import CliRunner

from mlstack.cli import app
from mlstack.plan import recorder
from mlstack.plan.recorder import PLAN_FORMAT_VERSION, Plan, run_program
from mlstack.spec.loader import load_spec
from tests.cli import assert_clean_failure
from tests.plans import PROJECT, ROOT, STACKS

TOKEN = re.compile(r"^mlstack:(?P<module>[a-z_]+):(?P<type>[A-Z][A-Za-z]+)$")


def test_rerun_produces_identical_json(stack_plan: Plan) -> None:
    config, spec = PROJECT.load(stack_plan.stack)
    again = run_program(PROJECT.program, config, spec)
    assert again.dumps() == stack_plan.dumps()


def test_plan_document_shape(stack_plan: Plan) -> None:
    document = json.loads(stack_plan.dumps())
    assert document["version"] == PLAN_FORMAT_VERSION
    assert document["stack"] == stack_plan.stack
    urns = [r["urn"] for r in document["resources"]]
    assert urns == sorted(urns) and len(set(urns)) == len(urns)
    assert document["summary"]["resources"] == len(urns)
    for resource in document["resources"]:
        assert resource["urn"].startswith(f"urn:pulumi:{stack_plan.stack}::mlstack::")
        assert resource["urn"].endswith(f"::{resource['name']}")


def test_urns_follow_the_engine_format(stack_plan: Plan) -> None:
    platform = next(r for r in stack_plan.resources if r.type == "mlstack:platform:Platform")
    assert (
        platform.urn
        == f"urn:pulumi:{stack_plan.stack}::mlstack::mlstack:platform:Platform::{stack_plan.stack}"
    )
    for resource in stack_plan.resources:
        if resource.parent and resource.parent != platform.parent:
            parent_chain = resource.parent.split("::")[2]
            assert resource.urn.split("::")[2] == f"{parent_chain}${resource.type}"


def test_mocked_ids_and_arns_are_unique_and_realistic(stack_plan: Plan) -> None:
    # Ids are unique per type: a role and its instance profile, or a Deployment and its Service, share a name.
    ids = [
        (r.type, r.id)
        for r in stack_plan.resources
        if r.custom and not r.type.startswith("pulumi:providers:")
    ]
    assert len(ids) == len(set(ids))
    account = load_spec(PROJECT.stack_file(stack_plan.stack))[1].account_id
    # An "arn" input (an EventTarget's target) is not the resource's own ARN.
    arns = [r.outputs["arn"] for r in stack_plan.resources if "arn" in r.outputs and "arn" not in r.inputs]
    assert arns and len(arns) == len(set(arns))
    for arn in arns:
        assert re.match(r"^arn:aws:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:.+", arn), arn
        assert account in arn or arn.startswith("arn:aws:s3:::")


def test_references_between_resources_stay_visible(stack_plan: Plan) -> None:
    # The KMS alias targets its key by the key's mocked id, and records the dependency.
    for alias in stack_plan.by_type("aws:kms/alias:Alias"):
        key_urn = alias.property_dependencies["targetKeyId"][0]
        assert stack_plan.get(key_urn).id == alias.inputs["targetKeyId"]


def test_every_component_follows_the_conventions(stack_plan: Plan) -> None:
    modules = {p.stem for p in (ROOT / "components").glob("*.py")}
    components = [r for r in stack_plan.resources if not r.custom]
    assert components
    for component in components:
        match = TOKEN.match(component.type)
        assert match, f"{component.type} is not a three-segment mlstack:<module>:<Type> token"
        assert match["module"] in modules, f"{component.type} names no module in components/"
        assert component.registered_outputs, f"{component.urn} never called register_outputs"
    component_urns = {c.urn for c in components}
    for resource in stack_plan.resources:
        if resource.type != "mlstack:platform:Platform":
            assert resource.parent in component_urns, f"{resource.urn} is not parented to a component"


def test_every_aws_resource_uses_the_tagged_provider(stack_plan: Plan) -> None:
    # One provider per region the environment uses (a replica region adds one); all carry the same tags.
    providers = stack_plan.by_type("pulumi:providers:aws")
    assert providers
    home = [p for p in providers if p.name == stack_plan.stack + "-aws"]
    assert len(home) == 1
    tags = json.loads(home[0].inputs["defaultTags"])["tags"]  # providers receive objects as JSON
    assert {"environment", "owner", "cost-center", "managed-by"} <= set(tags)
    assert tags["environment"] == stack_plan.stack and tags["managed-by"] == "mlstack"
    for provider in providers:
        assert json.loads(provider.inputs["defaultTags"])["tags"] == tags, provider.urn
    provider_urns = tuple(p.urn + "::" for p in providers)
    for resource in stack_plan.resources:
        if resource.custom and resource.type.startswith("aws:"):
            assert resource.provider.startswith(provider_urns), resource.urn


def test_only_the_entry_point_exports() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("components", "mlstack", "policies")
        for path in (ROOT / folder).rglob("*.py")
        if "pulumi.export(" in path.read_text()
    ]
    assert offenders == []
    assert "pulumi.export(" in (ROOT / "__main__.py").read_text()


def test_cli_plan_writes_file_and_summary(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["plan", "dev", "--out-dir", str(tmp_path), "--project-dir", str(ROOT)])
    assert result.exit_code == 0, result.output
    assert "mlstack:platform:Platform" in result.output and "resources" in result.output
    assert json.loads((tmp_path / "plan-dev.json").read_text())["stack"] == "dev"


def test_cli_plan_all_plans_every_stack(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["plan", "--all", "-q", "--out-dir", str(tmp_path), "--project-dir", str(ROOT)]
    )
    assert result.exit_code == 0, result.output
    # Each shipped stack has a deployment section, so its account foundation is planned too.
    expected = [f"plan-{s}.json" for s in STACKS] + [f"plan-{s}-account.json" for s in STACKS]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(expected)
    account = json.loads((tmp_path / "plan-dev-account.json").read_text())
    assert account["project"] == "mlstack-account" and account["stack"] == "dev"


def test_cli_bad_stack_file_writes_nothing(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    (project / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (project / "__main__.py").write_text((ROOT / "__main__.py").read_text())
    dev = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text()
    (project / "stacks" / "Pulumi.dev.yaml").write_text(
        dev.replace('account_id: "111122223333"', "account_id: nope")
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["plan", "dev", "--out-dir", str(out), "--project-dir", str(project)])
    assert_clean_failure(result, 2, "stacks/Pulumi.dev.yaml", "account_id")
    assert not out.exists()


def test_cli_unknown_stack_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["plan", "qa", "--project-dir", str(ROOT)])
    assert result.exit_code == 2
    assert "no stack file stacks/Pulumi.qa.yaml" in result.output and "dev" in result.output


def test_schema_file_is_current() -> None:
    from mlstack.schema import SCHEMA_PATH, render_schema

    assert (ROOT / SCHEMA_PATH).read_text() == render_schema(), "run `make schema` to regenerate"


def test_boundary_region_fence_admits_replica_regions(plans: dict[str, Plan]) -> None:
    for stack, plan in plans.items():
        spec = PROJECT.load(stack)[1]
        boundary = next(
            p for p in plan.by_type("aws:iam/policy:Policy") if p.name.endswith("permission-boundary")
        )
        fence = next(
            s
            for s in json.loads(boundary.inputs["policy"])["Statement"]
            if s["Sid"] == "OnlyTheEnvironmentRegion"
        )
        allowed = fence["Condition"]["StringNotEquals"]["aws:RequestedRegion"]
        assert sorted(allowed) == sorted({spec.region, *spec.replica_regions()})
    assert PROJECT.load("prod")[1].replica_regions() == ("us-west-2",)


def test_a_plan_leaves_the_callers_collector_thresholds_as_they_were() -> None:
    before = gc.get_threshold()
    gc.set_threshold(1234, 5, 6)
    try:
        config, spec = PROJECT.load("dev")
        run_program(PROJECT.program, config, spec)
        assert gc.get_threshold() == (1234, 5, 6)
    finally:
        gc.set_threshold(*before)


def test_settling_hands_a_task_that_never_finishes_back_to_the_sdk(monkeypatch) -> None:
    monkeypatch.setattr(recorder, "SETTLE_STALL_SECONDS", 0.05)

    async def scenario() -> tuple[bool, bool]:
        never = asyncio.get_running_loop().create_future()
        stuck = asyncio.ensure_future(never)
        quick = asyncio.ensure_future(asyncio.sleep(0))
        await recorder._settle()
        finished = (quick.done(), stuck.done())
        stuck.cancel()
        return finished

    assert asyncio.run(scenario()) == (True, False)


def test_an_offline_run_sends_no_stack_traces_and_puts_the_sdks_function_back(monkeypatch) -> None:
    from pulumi.runtime import resource as runtime_resource

    original = runtime_resource._get_stack_trace
    frames: list[int] = []
    record = recorder.RecordingMonitor.RegisterResource

    def counting(self, request):  # type: ignore[no-untyped-def]
        frames.append(len(request.stackTrace.frames) + int(request.HasField("sourcePosition")))
        return record(self, request)

    monkeypatch.setattr(recorder.RecordingMonitor, "RegisterResource", counting)
    config, spec = PROJECT.load("dev")
    run_program(PROJECT.program, config, spec)
    assert frames and set(frames) == {0}
    assert runtime_resource._get_stack_trace is original
    # Outside a run the SDK builds its traces as before.
    assert runtime_resource._get_stack_trace is not recorder._empty_stack_trace


def test_the_sdks_stack_trace_comes_back_when_the_program_fails() -> None:
    from pulumi.runtime import resource as runtime_resource

    original = runtime_resource._get_stack_trace
    try:
        with recorder._without_stack_traces():
            assert runtime_resource._get_stack_trace is recorder._empty_stack_trace
            raise RuntimeError("the program failed")
    except RuntimeError:
        pass
    assert runtime_resource._get_stack_trace is original
