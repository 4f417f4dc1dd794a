"""Registry on the recorded plans: repository defaults, caches, scanning, replication, grants and outputs."""

from __future__ import annotations

import json

from components.registry import image_allowed
from mlstack.plan.recorder import Plan
from mlstack.spec.registry import UPSTREAM_URLS
from tests.plans import PROJECT, policy_json
from tests.programs import program_plan


def _repositories(plan: Plan):
    return plan.by_type("aws:ecr/repository:Repository")


def test_repositories_are_immutable_encrypted_scanned_and_guarded(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    registry_key = next(k for k in stack_plan.by_type("aws:kms/key:Key") if k.name.endswith("-keys-registry"))
    repositories = _repositories(stack_plan)
    assert sorted(r.inputs["name"] for r in repositories) == sorted(
        f"{spec.environment}/{n}" for n in spec.registry.repositories
    )
    for repo in repositories:
        assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repo.inputs["encryptionConfigurations"] == [
            {"encryptionType": "KMS", "kmsKey": registry_key.outputs["arn"]}
        ]
        assert repo.property_dependencies["encryptionConfigurations"] == [registry_key.urn]
        assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repo.inputs["forceDelete"] is False
        assert (repo.protect, repo.retain_on_delete) == (spec.tier.hardened,) * 2


def test_lifecycle_expires_untagged_and_keeps_the_last_tagged(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    policies = stack_plan.by_type("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert len(policies) == len(spec.registry.repositories)
    for policy in policies:
        rules = {
            r["selection"]["tagStatus"]: r["selection"] for r in json.loads(policy.inputs["policy"])["rules"]
        }
        assert rules["untagged"]["countNumber"] == spec.registry.untagged_expiry_days
        assert rules["untagged"]["countType"] == "sinceImagePushed"
        assert rules["tagged"]["countNumber"] == spec.registry.keep_tagged_images
        assert rules["tagged"]["countType"] == "imageCountMoreThan"


def test_repository_policies_admit_only_the_platforms_roles(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    for policy in stack_plan.by_type("aws:ecr/repositoryPolicy:RepositoryPolicy"):
        statements = {s["Sid"]: s for s in policy_json(policy.inputs["policy"])["Statement"]}
        allow = statements["PlatformRolesPull"]
        assert allow["Principal"] == {"AWS": f"arn:aws:iam::{spec.account_id}:root"}
        assert (
            allow["Condition"]["ArnLike"]["aws:PrincipalArn"]
            == f"arn:aws:iam::{spec.account_id}:role/{spec.environment}-*"
        )
        deny = statements["DenyOutsideTheAccount"]
        assert deny["Effect"] == "Deny"
        assert deny["Condition"] == {"StringNotEquals": {"aws:PrincipalAccount": spec.account_id}}


def test_enhanced_scanning_follows_the_tier_default(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    scanning = stack_plan.by_type("aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration")
    assert spec.registry.enhanced_scanning == (stack_plan.stack == "prod")
    assert len(scanning) == int(spec.registry.enhanced_scanning)
    for config in scanning:
        assert config.inputs["scanType"] == "ENHANCED"
        assert config.inputs["rules"][0]["scanFrequency"] == "CONTINUOUS_SCAN"


def test_pull_through_caches_follow_the_spec(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    rules = {
        r.inputs["ecrRepositoryPrefix"]: r.inputs
        for r in stack_plan.by_type("aws:ecr/pullThroughCacheRule:PullThroughCacheRule")
    }
    assert set(rules) == {c.repository_prefix for c in spec.registry.pull_through_caches}
    assert {"ecr-public", "quay"} <= set(rules)
    for cache in spec.registry.pull_through_caches:
        rule = rules[cache.repository_prefix]
        assert rule["upstreamRegistryUrl"] == UPSTREAM_URLS[cache.upstream]
        assert rule.get("credentialArn") == cache.credential_arn


def test_replication_only_where_declared(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    replications = stack_plan.by_type("aws:ecr/replicationConfiguration:ReplicationConfiguration")
    assert len(replications) == (1 if spec.registry.replication_region else 0)
    for replication in replications:
        rule = replication.inputs["replicationConfiguration"]["rules"][0]
        assert rule["destinations"] == [
            {"region": spec.registry.replication_region, "registryId": spec.account_id}
        ]
        assert rule["repositoryFilters"] == [{"filter": f"{spec.environment}/", "filterType": "PREFIX_MATCH"}]


def test_outputs_give_the_registry_url_and_allowed_image_prefixes(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    registry = stack_plan.by_type("mlstack:registry:Registry")[0].outputs
    host = f"{spec.account_id}.dkr.ecr.{spec.region}.amazonaws.com"
    assert registry["registry_url"] == host
    assert sorted(registry["repository_urls"].values()) == sorted(
        f"{host}/{r.inputs['name']}" for r in _repositories(stack_plan)
    )
    prefixes = registry["allowed_image_prefixes"]
    assert image_allowed(f"{host}/{spec.environment}/serving:1.2.3", prefixes)
    assert image_allowed(f"{host}/{spec.environment}/serving@sha256:abc", prefixes)
    assert image_allowed(f"{host}/quay/prometheus/node-exporter:v1", prefixes)
    assert not image_allowed(f"{host}/{spec.environment}/serving-evil:1", prefixes)
    assert not image_allowed(f"{host}/quay/", prefixes)
    assert not image_allowed("docker.io/library/nginx:latest", prefixes)
    assert not image_allowed(
        f"999999999999.dkr.ecr.{spec.region}.amazonaws.com/{spec.environment}/serving:1", prefixes
    )


def _statements(plan: Plan, name: str) -> dict[str, dict]:
    policy = next(p for p in plan.by_type("aws:iam/rolePolicy:RolePolicy") if p.name == name)
    return {s["Sid"]: s for s in policy_json(policy.inputs["policy"])["Statement"]}


def test_pull_grant_covers_repositories_and_caches_only() -> None:
    _, spec = PROJECT.load("prod")
    statements = _statements(program_plan("prod"), "registry-pull-role-server")
    resources = statements["PullImages"]["Resource"]
    base = f"arn:aws:ecr:{spec.region}:{spec.account_id}:repository/"
    assert sorted(resources) == sorted(
        [f"{base}prod/{r}" for r in spec.registry.repositories]
        + [f"{base}{c.repository_prefix}/*" for c in spec.registry.pull_through_caches]
    )
    assert "ecr:PutImage" not in statements["PullImages"]["Action"]
    assert statements["FillPullThroughCaches"]["Resource"] == [
        f"{base}{c.repository_prefix}/*" for c in spec.registry.pull_through_caches
    ]


def test_push_grant_can_be_limited_to_some_repositories() -> None:
    _, spec = PROJECT.load("dev")
    plan = program_plan("dev")
    everything = _statements(plan, "registry-push-role-ci")["PushImages"]
    assert len(everything["Resource"]) == len(spec.registry.repositories)
    assert "ecr:PutImage" in everything["Action"]
    training = _statements(plan, "registry-push-training-role-trainer")["PushImages"]
    assert training["Resource"] == [f"arn:aws:ecr:{spec.region}:{spec.account_id}:repository/dev/training"]
