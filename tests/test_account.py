"""The account foundation (components/account.py, account/): its spec, its plan, the pack over it, and what its
roles can and cannot do, evaluated by the deploy simulation's IAM evaluator."""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from typing import Any

import pytest

from components.account import (
    AUDIT_ACTIONS,
    GITHUB_OIDC_URL,
    PIPELINE_SERVICES,
    PREFLIGHT_ACTIONS,
    SERVICE_OF_MODULE,
)
from mlstack.check.engine import evaluate as evaluate_pack
from mlstack.check.run import foundation_rules
from mlstack.check.waivers import load_waivers
from mlstack.plan.recorder import ACCOUNT_PROJECT, Plan
from mlstack.planning import plan_foundation
from mlstack.simulate.catalog import gate_rules_by_id
from mlstack.simulate.framework import World
from mlstack.simulate.iam import Access, Decision, Request, access
from mlstack.spec.loader import SpecError, StackConfig, parse_spec
from policies.catalog import ALL_RULES
from policies.framework import EnforcementLevel
from tests.plans import PROJECT, ROOT, STACKS, plan_of

ACCOUNT = {"dev": "111122223333", "staging": "222233334444", "prod": "333344445555"}
STATE_BUCKET = "mlstack-pulumi-state-111122223333-us-east-1"


@cache
def foundation_of(stack: str) -> Plan:
    config, spec = PROJECT.load(stack)
    plan = plan_foundation(PROJECT, config, spec)
    assert plan is not None, f"stacks/Pulumi.{stack}.yaml has no deployment section"
    return plan


@cache
def foundation_access(stack: str) -> Access:
    _, spec = PROJECT.load(stack)
    return access(World(foundation_of(stack), spec, ROOT))


def _inputs(plan: Plan, type_: str, name: str) -> dict[str, Any]:
    [resource] = [r for r in plan.by_type(type_) if r.name == name]
    return resource.inputs


def _doc(value: Any) -> dict[str, Any]:
    while isinstance(value, str):
        value = json.loads(value)
    return value


# --- spec ---------------------------------------------------------------------------------------------------


def _spec_with(deployment: dict[str, Any]) -> dict[str, Any]:
    config, _ = PROJECT.load("dev")
    platform = json.loads(json.dumps(config.values["mlstack:platform"]))
    platform["deployment"] = deployment
    return platform


@pytest.mark.parametrize(
    ("deployment", "path", "words"),
    [
        ({"github_repository": "example-org"}, "deployment.github_repository", "pattern"),
        ({"github_repository": "-bad/mlstack"}, "deployment.github_repository", "pattern"),
        (
            {"github_repository": "o/r", "secrets_key_alias": "alias/aws/s3"},
            "deployment.secrets_key_alias",
            "AWS managed keys",
        ),
        (
            {
                "github_repository": "o/r",
                "identity_center": {
                    "instance_arn": "arn:aws:sso:::instance/ssoins-1234567890abcdef",
                    "group_assignments": {"NoSuchSet": ["a1b2c3d4-1111-2222-3333-444455556666"]},
                },
            },
            "deployment.identity_center.group_assignments.NoSuchSet",
            "no role trusts permission set 'NoSuchSet'",
        ),
        (
            {"github_repository": "o/r", "identity_center": {"instance_arn": "arn:aws:sso:::instance/nope"}},
            "deployment.identity_center.instance_arn",
            "pattern",
        ),
    ],
)
def test_bad_deployment_sections_name_the_field(deployment: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(_spec_with(deployment), "stacks/Pulumi.dev.yaml", region="us-east-1")
    problems = {p.path: p.message for p in caught.value.problems}
    assert path in problems, problems
    assert words in problems[path]


def test_a_stack_without_deployment_plans_no_foundation() -> None:
    config, spec = PROJECT.load("dev")
    bare = spec.model_copy(update={"deployment": None})
    assert plan_foundation(PROJECT, config, bare) is None


# --- plan ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_foundation_is_its_own_project_with_three_bounded_roles(stack: str) -> None:
    plan = foundation_of(stack)
    assert plan.project == ACCOUNT_PROJECT
    [component] = plan.by_type("mlstack:account:AccountFoundation")
    assert component.registered_outputs
    roles = {r.inputs["name"]: r for r in plan.by_type("aws:iam/role:Role")}
    assert set(roles) == {f"{stack}-mlstack-deploy", f"{stack}-mlstack-preview", f"{stack}-mlstack-audit"}
    boundary = f"arn:aws:iam::{ACCOUNT[stack]}:policy/{stack}-mlstack-pipeline-permission-boundary"
    assert {r.inputs["permissionsBoundary"] for r in roles.values()} == {boundary}
    assert set(plan.outputs) >= {"deploy_role_arn", "preview_role_arn", "audit_role_arn", "oidc_provider_arn"}


@pytest.mark.parametrize(
    ("role", "environment"), [("deploy", "dev"), ("preview", "dev-preview"), ("audit", "dev-audit")]
)
def test_each_role_trusts_one_github_environment_of_the_repository(role: str, environment: str) -> None:
    trust = _doc(_inputs(foundation_of("dev"), "aws:iam/role:Role", f"dev-{role}")["assumeRolePolicy"])
    [statement] = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    [provider] = foundation_of("dev").by_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert statement["Principal"] == {"Federated": provider.outputs["arn"]}
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": f"repo:example-org/mlstack:environment:{environment}",
        }
    }


def test_oidc_provider_has_no_thumbprint_and_can_be_brought() -> None:
    provider = _inputs(
        foundation_of("dev"), "aws:iam/openIdConnectProvider:OpenIdConnectProvider", "dev-github-oidc"
    )
    assert provider["url"] == GITHUB_OIDC_URL
    assert provider["clientIdLists"] == ["sts.amazonaws.com"]
    assert "thumbprintLists" not in provider
    config, _ = PROJECT.load("dev")
    existing = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"
    platform = _spec_with({"github_repository": "example-org/mlstack", "github_oidc_provider_arn": existing})
    brought = StackConfig(config.source, config.stack, {**config.values, "mlstack:platform": platform})
    plan = plan_foundation(PROJECT, brought, parse_spec(platform, config.source))
    assert plan is not None
    assert not plan.by_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    trust = _doc(_inputs(plan, "aws:iam/role:Role", "dev-deploy")["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Federated": existing}


def test_prod_permission_sets_assume_only_the_roles_that_trust_them() -> None:
    plan = foundation_of("prod")
    sets = {r.inputs["name"]: r for r in plan.by_type("aws:ssoadmin/permissionSet:PermissionSet")}
    assert set(sets) == {"MLPlatformAdmin", "MLSearchEngineer", "MLRecsysEngineer", "MLResearchScientist"}
    assert {r.inputs["sessionDuration"] for r in sets.values()} == {"PT1H"}
    policies = {
        r.name: _doc(r.inputs["inlinePolicy"])
        for r in plan.by_type("aws:ssoadmin/permissionSetInlinePolicy:PermissionSetInlinePolicy")
    }
    admin = policies["prod-sso-MLPlatformAdmin-policy"]["Statement"]
    assert admin == [
        {
            "Sid": "AssumeTheEnvironmentsHumanRoles",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": ["arn:aws:iam::333344445555:role/prod-platform-admin"],
        }
    ]
    [assignment] = plan.by_type("aws:ssoadmin/accountAssignment:AccountAssignment")
    assert assignment.inputs["principalType"] == "GROUP"
    assert assignment.inputs["targetId"] == "333344445555"
    assert not [r for r in plan.by_type("pulumi:providers:aws") if r.name == "prod-identity-center"]


def test_permission_sets_of_another_account_go_through_a_provider_pinned_to_it() -> None:
    config, _ = PROJECT.load("prod")
    platform = json.loads(json.dumps(config.values["mlstack:platform"]))
    admin = "arn:aws:iam::999988887777:role/mlstack-identity-center-admin"
    platform["deployment"]["identity_center"]["admin_role_arn"] = admin
    plan = plan_foundation(
        PROJECT,
        StackConfig(config.source, config.stack, {**config.values, "mlstack:platform": platform}),
        parse_spec(platform, config.source),
    )
    assert plan is not None
    provider = _inputs(plan, "pulumi:providers:aws", "prod-identity-center")
    assert json.loads(provider["allowedAccountIds"]) == ["999988887777"]
    assert json.loads(provider["assumeRoles"])[0]["roleArn"] == admin
    provider_urn = next(
        r.urn for r in plan.by_type("pulumi:providers:aws") if r.name == "prod-identity-center"
    )
    for resource in plan.resources:
        if resource.type.startswith("aws:ssoadmin/"):
            assert resource.provider.startswith(provider_urn), resource.name
    # MLS-ENV-003 reports the pin to another account: a deliberate exception a waiver must name.
    violations = evaluate_pack(plan.resources, config.wire_config(), foundation_rules(ALL_RULES, plan), None)
    assert [(v.policy_id, (v.urn or "").rsplit("::", 1)[-1]) for v in violations] == [
        ("MLS-ENV-003", "prod-identity-center")
    ]


def test_the_deploy_role_reaches_every_service_the_platform_creates_resources_of() -> None:
    for stack in STACKS:
        for resource in plan_of(stack).resources:
            if not resource.type.startswith("aws:"):
                continue
            module = resource.type.split(":")[1].split("/")[0]
            services = SERVICE_OF_MODULE.get(module)
            assert services is not None, (
                f"{resource.type}: map its module to an IAM service in SERVICE_OF_MODULE"
            )
            for service in (services,) if isinstance(services, str) else services:
                assert service in PIPELINE_SERVICES, f"{resource.type} needs {service}, not granted to deploy"


# --- the pack -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_pack_finds_nothing_mandatory_that_is_not_waived(stack: str) -> None:
    config, _ = PROJECT.load(stack)
    plan = foundation_of(stack)
    waivers = load_waivers(ROOT / "policies" / "waivers.yaml", gate_rules_by_id(), dt.date(2026, 11, 30))
    violations = evaluate_pack(plan.resources, config.wire_config(), foundation_rules(ALL_RULES, plan), None)
    open_ = [v for v in violations if not any(w.covers(v.policy_id, v.urn, stack) for w in waivers)]
    mandatory = [v for v in open_ if gate_rules_by_id()[v.policy_id].level is EnforcementLevel.MANDATORY]
    assert not mandatory, [(v.policy_id, v.urn, v.message) for v in mandatory]


def test_foundation_rules_keep_the_boundary_rule_and_drop_platform_only_stack_rules() -> None:
    ids = {r.id for r in foundation_rules(ALL_RULES, foundation_of("dev"))}
    assert "MLS-IAM-002" in ids and "MLS-IAM-001" in ids
    assert "MLS-COST-001" not in ids and "MLS-NET-005" not in ids


# --- what the roles can do (deploy-simulation IAM evaluator) -------------------------------------------------

BOUNDARY = "arn:aws:iam::111122223333:policy/dev-permission-boundary"


def _check(role: str, action: str, resource: str, **context: tuple[str, ...]) -> Decision:
    world = foundation_access("dev")
    return world.check(world.role(f"dev-mlstack-{role}"), Request(action, resource, context)).decision


def test_deploy_creates_roles_only_with_the_platform_boundary() -> None:
    role = "arn:aws:iam::111122223333:role/dev-karpenter-node"
    assert (
        _check("deploy", "iam:CreateRole", role, **{"iam:PermissionsBoundary": (BOUNDARY,)}) is Decision.ALLOW
    )
    assert (
        _check("deploy", "iam:CreateRole", role, **{"iam:PermissionsBoundary": ()}) is Decision.EXPLICIT_DENY
    )
    other = "arn:aws:iam::111122223333:policy/dev-mlstack-pipeline-permission-boundary"
    assert (
        _check("deploy", "iam:CreateRole", role, **{"iam:PermissionsBoundary": (other,)})
        is Decision.EXPLICIT_DENY
    )
    # Another environment's roles are not its to create, boundary or not.
    prod_role = "arn:aws:iam::111122223333:role/prod-karpenter-node"
    assert _check("deploy", "iam:CreateRole", prod_role, **{"iam:PermissionsBoundary": (BOUNDARY,)}) is not (
        Decision.ALLOW
    )


def test_deploy_cannot_touch_the_pipeline_or_mint_credentials() -> None:
    own = "arn:aws:iam::111122223333:role/dev-mlstack-deploy"
    for action in ("iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePermissionsBoundary"):
        assert _check("deploy", action, own) is Decision.EXPLICIT_DENY, action
    boundary = "arn:aws:iam::111122223333:policy/dev-mlstack-pipeline-permission-boundary"
    assert _check("deploy", "iam:CreatePolicyVersion", boundary) is Decision.EXPLICIT_DENY
    assert _check("deploy", "iam:CreateUser", "arn:aws:iam::111122223333:user/x") is Decision.EXPLICIT_DENY
    assert _check("deploy", "iam:PutRolePolicy", "arn:aws:iam::111122223333:role/dev-karpenter-node") is (
        Decision.ALLOW
    )


def test_deploy_writes_state_and_the_environments_buckets_only() -> None:
    state = f"arn:aws:s3:::{STATE_BUCKET}/.pulumi/stacks/mlstack/dev.json"
    assert _check("deploy", "s3:PutObject", state) is Decision.ALLOW
    assert (
        _check("deploy", "s3:PutBucketPolicy", "arn:aws:s3:::dev-111122223333-us-east-1-models")
        is Decision.ALLOW
    )
    assert _check("deploy", "s3:PutBucketPolicy", "arn:aws:s3:::prod-333344445555-us-east-1-models") is not (
        Decision.ALLOW
    )
    key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert _check(
        "deploy", "kms:Encrypt", key, **{"kms:ResourceAliases": ("alias/mlstack-pulumi-secrets",)}
    ) is (Decision.ALLOW)


def test_preview_reads_but_cannot_write() -> None:
    state = f"arn:aws:s3:::{STATE_BUCKET}/.pulumi/stacks/mlstack/dev.json"
    assert _check("preview", "s3:GetObject", state) is Decision.ALLOW
    assert _check("preview", "s3:PutObject", state) is not Decision.ALLOW
    key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    aliases = {"kms:ResourceAliases": ("alias/mlstack-pulumi-secrets",)}
    assert _check("preview", "kms:Decrypt", key, **aliases) is Decision.ALLOW
    assert _check("preview", "kms:Encrypt", key, **aliases) is not Decision.ALLOW
    assert (
        _check("preview", "kms:Decrypt", key, **{"kms:ResourceAliases": ("alias/other",)})
        is not Decision.ALLOW
    )
    assert _check("preview", "ec2:DescribeVpcs", "*") is Decision.ALLOW
    assert _check("preview", "budgets:ViewBudget", "arn:aws:budgets::111122223333:budget/dev-monthly") is (
        Decision.ALLOW
    )
    for action, resource in [
        ("ec2:CreateVpc", "*"),
        ("eks:CreateCluster", "arn:aws:eks:us-east-1:111122223333:cluster/dev-eks"),
        ("iam:CreateRole", "arn:aws:iam::111122223333:role/dev-x"),
        ("s3:GetObject", "arn:aws:s3:::dev-111122223333-us-east-1-models/weights.bin"),
        ("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:111122223333:secret:x"),
        ("ssm:GetParameter", "arn:aws:ssm:us-east-1:111122223333:parameter/x"),
        ("codeconnections:GetConnectionToken", "arn:aws:codeconnections:us-east-1:111122223333:connection/x"),
        ("codeconnections:UseConnection", "arn:aws:codeconnections:us-east-1:111122223333:connection/x"),
    ]:
        assert _check("preview", action, resource) is not Decision.ALLOW, action


def test_audit_can_make_every_call_of_mlstack_audit_and_nothing_else() -> None:
    for action in AUDIT_ACTIONS:
        assert _check("audit", action, "*") is Decision.ALLOW, action
    assert (
        _check("audit", "s3:GetObject", "arn:aws:s3:::dev-111122223333-us-east-1-models/x")
        is not Decision.ALLOW
    )
    assert _check("audit", "s3:ListBucket", f"arn:aws:s3:::{STATE_BUCKET}") is not Decision.ALLOW


def test_the_deploy_stage_can_run_preflight_and_audit() -> None:
    for action in (*PREFLIGHT_ACTIONS, *AUDIT_ACTIONS):
        assert _check("deploy", action, "*") is Decision.ALLOW, action


def test_the_default_state_bucket_is_bootstraps() -> None:
    from components.account import default_state_bucket
    from components.environment import Environment
    from mlstack.live.bootstrap import state_bucket_name

    _, spec = PROJECT.load("dev")
    assert default_state_bucket(Environment.from_spec(spec)) == state_bucket_name("111122223333", "us-east-1")
    assert default_state_bucket(Environment.from_spec(spec)) == STATE_BUCKET


def test_mlstack_check_reports_the_foundations_violations(monkeypatch: pytest.MonkeyPatch) -> None:
    import components.account
    from mlstack.check.run import check_stacks

    def too_broad(env: Any) -> list[dict[str, Any]]:
        return [{"Sid": "Everything", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]

    monkeypatch.setattr(components.account, "audit_statements", too_broad)
    result = check_stacks(PROJECT, ["dev"], simulate=False, waivers=[])
    found = {(f.rule.id, (f.violation.urn or "").rsplit("::", 1)[-1]) for f in result.stacks[0].findings}
    assert ("MLS-IAM-005", "dev-audit-policy") in found
    assert result.stacks[0].resources == len(plan_of("dev").resources) + len(foundation_of("dev").resources)


def test_deploy_acts_in_the_environments_regions_only() -> None:
    prod = foundation_access("prod")
    deploy = prod.role("prod-mlstack-deploy")

    def decide(action: str, resource: str, region: str) -> Decision:
        return prod.check(deploy, Request(action, resource, {"aws:RequestedRegion": (region,)})).decision

    # Prod replicates models and images to us-west-2 (stacks/Pulumi.prod.yaml).
    assert decide("ecr:CreateRepository", "*", "us-east-1") is Decision.ALLOW
    assert decide("ecr:CreateRepository", "*", "us-west-2") is Decision.ALLOW
    assert decide("ecr:CreateRepository", "*", "eu-central-1") is not Decision.ALLOW
    replica_key = "arn:aws:kms:us-west-2:333344445555:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert decide("kms:PutKeyPolicy", replica_key, "us-west-2") is Decision.ALLOW
    budget = "arn:aws:budgets::333344445555:budget/prod-monthly"
    assert decide("budgets:ModifyBudget", budget, "us-east-1") is Decision.ALLOW
    other = "arn:aws:budgets::333344445555:budget/someone-elses"
    assert decide("budgets:ModifyBudget", other, "us-east-1") is not Decision.ALLOW
