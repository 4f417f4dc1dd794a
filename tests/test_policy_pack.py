"""The pack as the engine runs it: loaded from policies/__main__.py in its own process and called over gRPC
with real AnalyzeRequest / AnalyzeStackRequest messages built from a recorded plan. It must answer exactly
what the offline `mlstack check` finds on the same resources.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from mlstack.check.engine import evaluate
from mlstack.plan.recorder import RecordedResource
from policies.catalog import ALL_RULES, pack_defaults
from policies.docs import DOCS_PATH, render
from policies.waiving import pack_waivers
from tests.plans import PROJECT, ROOT, plan_of

_LEVELS = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
}


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    json_format.ParseDict(values, message)
    return message


@pytest.fixture(scope="module")
def mutated_prod() -> list[RecordedResource]:
    """The prod plan with three real resources broken: a key without rotation, a bucket without its public
    access block (a stack relation), and a provider in an unapproved region."""
    resources = [copy.deepcopy(r) for r in plan_of("prod").resources]
    key = next(r for r in resources if r.type == "aws:kms/key:Key")
    key.inputs["enableKeyRotation"] = False
    resources = [
        r
        for r in resources
        if not (r.type == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock" and "datasets" in r.name)
    ]
    provider = next(r for r in resources if r.type == "pulumi:providers:aws")
    provider.inputs["region"] = "ap-southeast-1"
    return resources


def _start_pack(pack_root: Path = ROOT) -> subprocess.Popen[bytes]:
    """The pack under ``pack_root``/policies started the way the Pulumi CLI starts a Python pack."""
    config, _ = PROJECT.load("prod")
    env = {
        **os.environ,
        # The pack's own package first, then the project's (mlstack) for what the pack imports.
        "PYTHONPATH": os.pathsep.join(dict.fromkeys([str(pack_root), str(ROOT)])),
        # The engine hands the stack's config to the analyzer in these variables.
        "PULUMI_CONFIG": json.dumps(config.wire_config()),
        "PULUMI_PROJECT": "mlstack",
        "PULUMI_STACK": "prod",
        "PULUMI_DRY_RUN": "true",
    }
    return subprocess.Popen(
        [sys.executable, "-u", "__main__.py"],
        cwd=pack_root / "policies",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """The pack as the engine runs it: its __main__ prints the gRPC port."""
    process = _start_pack()
    try:
        assert process.stdout is not None
        port = process.stdout.readline().decode().strip()
        if not port.isdigit():
            process.kill()
            raise AssertionError(f"the pack did not start: {process.communicate()[1].decode()[-2000:]}")
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.kill()
        process.wait()


def _provider_message(resource: RecordedResource, by_urn: dict[str, RecordedResource]) -> Any:
    provider = by_urn.get(resource.provider.rsplit("::", 1)[0]) if resource.provider else None
    if provider is None:
        return None
    return analyzer_pb2.AnalyzerProviderResource(
        type=provider.type, properties=_struct(provider.inputs), urn=provider.urn, name=provider.name
    )


def _options(resource: RecordedResource) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(protect=resource.protect, parent=resource.parent)


def _diagnostics(response: Any, analyzed_urn: str = "") -> set[tuple[str, str, str]]:
    # A resource policy's diagnostic leaves the URN empty: the engine attributes it to the analyzed resource.
    return {(d.policyName, d.urn or analyzed_urn, _LEVELS[d.enforcementLevel]) for d in response.diagnostics}


def test_pack_describes_every_policy(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "mlstack-guardrails"
    assert [p.name for p in info.policies] == [r.id for r in ALL_RULES]
    for policy, rule in zip(info.policies, ALL_RULES, strict=True):
        assert _LEVELS[policy.enforcementLevel] == rule.level.value
        assert policy.remediation_steps == rule.remediation
        assert set(policy.configSchema.properties) == set(rule.config)
    assert analyzer.GetPluginInfo(empty_pb2.Empty()).version


def test_engine_and_offline_check_agree(
    analyzer: analyzer_pb2_grpc.AnalyzerStub, mutated_prod: list[RecordedResource]
) -> None:
    # The CLI configures the pack with the schema defaults filled in, as `mlstack check` does.
    analyzer.Configure(
        analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={
                rule.id: analyzer_pb2.PolicyConfig(
                    enforcementLevel=analyzer_pb2.MANDATORY
                    if rule.level.value == "mandatory"
                    else analyzer_pb2.ADVISORY,
                    properties=_struct(pack_defaults().get(rule.id, {})),
                )
                for rule in ALL_RULES
            }
        )
    )
    by_urn = {r.urn: r for r in mutated_prod}
    engine: set[tuple[str, str, str]] = set()
    for resource in mutated_prod:
        request = analyzer_pb2.AnalyzeRequest(
            type=resource.type,
            properties=_struct(resource.inputs),
            urn=resource.urn,
            name=resource.name,
            options=_options(resource),
            provider=_provider_message(resource, by_urn),
        )
        engine |= _diagnostics(analyzer.Analyze(request), resource.urn)
    stack = analyzer_pb2.AnalyzeStackRequest(
        resources=[
            analyzer_pb2.AnalyzerResource(
                type=r.type,
                properties=_struct({**r.inputs, **(r.outputs if r.custom else {})}),
                urn=r.urn,
                name=r.name,
                options=_options(r),
                provider=_provider_message(r, by_urn),
                parent=r.parent,
                dependencies=r.dependencies,
                propertyDependencies={
                    k: analyzer_pb2.AnalyzerPropertyDependencies(urns=v)
                    for k, v in r.property_dependencies.items()
                },
            )
            for r in mutated_prod
        ]
    )
    engine |= _diagnostics(analyzer.AnalyzeStack(stack))

    config, _ = PROJECT.load("prod")
    offline = {
        (v.policy_id, v.urn or "", v.level.value)
        for v in evaluate(mutated_prod, config.wire_config(), ALL_RULES)
    }
    # The engine leaves out what policies/waivers.yaml waives (it has no "waived" state); `mlstack check`
    # reports those findings as waived. The shipped file waives prod's partner trust, the Metaflow
    # migration's root container of each team and the metrics namespace's Pod Security level (node exporter needs
    # privileged; the stack creates that namespace for Grafana's synced SSO client).
    waivers = pack_waivers(ALL_RULES)
    waived = {f for f in offline if any(w.covers(f[0], f[1], "prod") for w in waivers)}
    _, prod_spec = PROJECT.load("prod")
    assert {(policy, urn.rsplit("::", 1)[-1]) for policy, urn, _ in waived} == {
        ("MLS-K8S-012", f"prod-orchestrator-{team.name}-metaflow-metadata") for team in prod_spec.teams
    } | {("MLS-IAM-006", "prod-teams-research-human"), ("MLS-K8S-022", "prod-metrics-ns")}
    assert engine == offline - waived
    found = {policy for policy, _, _ in engine}
    assert {"MLS-KMS-001", "MLS-S3-002", "MLS-ENV-002"} <= found


def test_broken_waiver_file_stops_the_pack_with_one_message(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "policies", tmp_path / "policies", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "policies" / "waivers.yaml").write_text(
        yaml.safe_dump({"waivers": [{"policy": "MLS-IAM-006", "owner": 2003}]})
    )
    process = _start_pack(tmp_path)
    try:
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    message = stderr.decode()
    assert process.returncode != 0 and not stdout.strip()  # no port: the engine never talks to it
    assert message.startswith("the policy pack cannot start: policies/waivers.yaml: ")
    assert "entry 0, field 'owner': expected text, got int 2003; quote it" in message
    assert "entry 0, field 'reason': missing or empty" in message and "fix:" in message
    assert "Traceback" not in message


def test_plugin_manifest_uses_the_project_virtualenv() -> None:
    manifest = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    assert manifest["runtime"]["options"]["virtualenv"] == "../.venv"


def test_main_only_builds_the_pack() -> None:
    tree = ast.parse((ROOT / "policies" / "__main__.py").read_text())
    statements = [
        node
        for node in tree.body
        if not isinstance(node, ast.Import | ast.ImportFrom | ast.Expr)
        or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call))
    ]
    calls = [node for node in statements if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)]
    assert len(statements) == len(calls) == 1
    call = calls[0].value
    assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "PolicyPack"
    assert {k.arg for k in call.keywords} == {"name", "policies", "enforcement_level"}
    # The engine gets the waived policies, not each rule's own (which `mlstack check` evaluates).
    policies = next(k.value for k in call.keywords if k.arg == "policies")
    assert ast.unparse(policies) == "engine_policies(ALL_RULES)"


def test_policy_docs_are_current() -> None:
    assert (ROOT / DOCS_PATH).read_text(encoding="utf-8") == render(), "run `python -m policies.docs`"
