"""Registry on the recorded plans: repository defaults, caches, scanning, replication, grants and outputs."""

from __future__ import annotations

import json
from fnmatch import fnmatch

from components.registry import image_allowed
from mlstack.plan.recorder import Plan, RecordedResource
from mlstack.spec.registry import UPSTREAM_URLS
from tests.plans import PROJECT, plan_of, policy_json
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
        # An Allow for the account root only delegates to IAM; the Deny is what restricts pulls (rt-data M1).
        assert not [s for s in statements.values() if s["Effect"] == "Allow"]
        only = statements["OnlyPlatformRolesPull"]
        assert only["Effect"] == "Deny" and only["Principal"] == "*"
        assert set(only["Action"]) == {
            "ecr:BatchCheckLayerAvailability",
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
        }
        exempt = only["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
        account = f"arn:aws:iam::{spec.account_id}"
        assert exempt == [f"{account}:role/{spec.environment}-*", f"{account}:role/aws-service-role/*"]
        for principal, denied in [
            (f"{account}:role/{spec.environment}-karpenter-node", False),
            (
                f"{account}:role/aws-service-role/inspector2.amazonaws.com/AWSServiceRoleForAmazonInspector2",
                False,
            ),
            (f"{account}:role/AWSReservedSSO_Admin_0123456789abcdef", True),
            (f"{account}:user/alice", True),
        ]:
            assert (not any(fnmatch(principal, p) for p in exempt)) is denied, principal
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


TEMPLATE = "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate"


def _templates(plan: Plan, applied_for: str) -> dict[str, RecordedResource]:
    return {t.inputs["prefix"]: t for t in plan.by_type(TEMPLATE) if applied_for in t.inputs["appliedFors"]}


def _creation_role(plan: Plan) -> RecordedResource:
    (role,) = [r for r in plan.by_type("aws:iam/role:Role") if r.name.endswith("registry-creation-role")]
    return role


def _creation_policy(plan: Plan) -> RecordedResource:
    (policy,) = [
        p
        for p in plan.by_type("aws:iam/rolePolicy:RolePolicy")
        if p.name.endswith("registry-creation-policy")
    ]
    return policy


def _provider_region(plan: Plan, resource: RecordedResource) -> str:
    provider = plan.get(resource.provider.rsplit("::", 1)[0])
    return str(provider.inputs["region"])


def test_every_cache_creates_encrypted_mutable_repositories_before_its_rule(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    registry_key = next(k for k in stack_plan.by_type("aws:kms/key:Key") if k.name.endswith("-keys-registry"))
    role = _creation_role(stack_plan)
    templates = _templates(stack_plan, "PULL_THROUGH_CACHE")
    assert set(templates) == {c.repository_prefix for c in spec.registry.pull_through_caches}
    rules = {
        r.inputs["ecrRepositoryPrefix"]: r
        for r in stack_plan.by_type("aws:ecr/pullThroughCacheRule:PullThroughCacheRule")
    }
    repository = _repositories(stack_plan)[0]
    lifecycle = stack_plan.by_type("aws:ecr/lifecyclePolicy:LifecyclePolicy")[0].inputs["policy"]
    repository_policy = stack_plan.by_type("aws:ecr/repositoryPolicy:RepositoryPolicy")[0].inputs["policy"]
    for prefix, template in templates.items():
        assert template.inputs["appliedFors"] == ["PULL_THROUGH_CACHE"]
        assert template.inputs["encryptionConfigurations"] == repository.inputs["encryptionConfigurations"]
        assert template.property_dependencies["encryptionConfigurations"] == [registry_key.urn]
        # Cached tags follow their upstream, which immutable tags would forbid.
        assert template.inputs["imageTagMutability"] == "MUTABLE"
        assert template.inputs["lifecyclePolicy"] == lifecycle
        assert template.inputs["repositoryPolicy"] == repository_policy
        assert template.inputs["resourceTags"]["environment"] == spec.environment
        assert template.inputs["customRoleArn"] == role.outputs["arn"]
        assert _provider_region(stack_plan, template) == spec.region
        # No pull may create a cache repository before its template exists.
        assert template.urn in rules[prefix].dependencies


def test_creation_role_is_bounded_and_trusts_only_ecr(stack_plan: Plan) -> None:
    role = _creation_role(stack_plan)
    assert role.inputs["permissionsBoundary"].endswith(f":policy/{stack_plan.stack}-permission-boundary")
    trust = policy_json(role.inputs["assumeRolePolicy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": ["ecr.amazonaws.com"]}]
    policy = _creation_policy(stack_plan)
    # ECR may use a template only once the role can do what the template asks of it.
    assert all(policy.urn in t.dependencies for t in stack_plan.by_type(TEMPLATE))


def test_creation_role_uses_only_the_registry_keys_and_its_repositories(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    policy = _creation_policy(stack_plan)
    statements = {s["Sid"]: s for s in policy_json(policy.inputs["policy"])["Statement"]}
    keys = [
        k.outputs["arn"] for k in stack_plan.by_type("aws:kms/key:Key") if "registry" in k.name.split("-")[-1]
    ]
    replica = spec.registry.replication_region
    assert len(keys) == (2 if replica else 1)
    assert sorted(statements["RegistryKeysForEcr"]["Resource"]) == sorted(keys)
    assert sorted(statements["GrantEcrTheRegistryKeys"]["Resource"]) == sorted(keys)
    assert statements["GrantEcrTheRegistryKeys"]["Condition"] == {
        "Bool": {"kms:GrantIsForAWSResource": "true"}
    }
    base = f"arn:aws:ecr:{spec.region}:{spec.account_id}:repository/"
    replicas = [f"arn:aws:ecr:{replica}:{spec.account_id}:repository/{spec.environment}/*"] if replica else []
    assert (
        statements["CreateRepositories"]["Resource"]
        == [f"{base}{c.repository_prefix}/*" for c in spec.registry.pull_through_caches] + replicas
    )
    assert statements["CreateRepositories"]["Action"] == ["ecr:CreateRepository", "ecr:TagResource"]
    assert ("ReplicateImages" in statements) == bool(replica)
    for statement in statements.values():
        assert "*" not in statement["Resource"]


def test_replicas_are_encrypted_with_a_key_of_their_own_region() -> None:
    plan = plan_of("prod")
    _, spec = PROJECT.load("prod")
    assert spec.registry.replication_region is not None
    (template,) = _templates(plan, "REPLICATION").values()
    (replica_key,) = [
        k for k in plan.by_type("aws:kms/key:Key") if k.name.endswith("registry-replica-registry")
    ]
    assert template.inputs["prefix"] == spec.environment
    assert template.inputs["encryptionConfigurations"] == [
        {"encryptionType": "KMS", "kmsKey": replica_key.outputs["arn"]}
    ]
    assert template.inputs["imageTagMutability"] == "IMMUTABLE"
    assert template.inputs["customRoleArn"] == _creation_role(plan).outputs["arn"]
    assert (
        _provider_region(plan, template)
        == _provider_region(plan, replica_key)
        == spec.registry.replication_region
    )
    assert replica_key.protect and replica_key.inputs["enableKeyRotation"] is True
    via = policy_json(replica_key.inputs["policy"])["Statement"][1]["Condition"]["StringEquals"][
        "kms:ViaService"
    ]
    assert via == [f"ecr.{spec.registry.replication_region}.amazonaws.com"]
    (replication,) = plan.by_type("aws:ecr/replicationConfiguration:ReplicationConfiguration")
    assert template.urn in replication.dependencies


def test_no_replica_template_or_key_without_replication() -> None:
    for stack in ("dev", "staging"):
        plan = plan_of(stack)
        _, spec = PROJECT.load(stack)
        assert spec.registry.replication_region is None
        assert _templates(plan, "REPLICATION") == {}
        assert not [k for k in plan.by_type("aws:kms/key:Key") if "replica-registry" in k.name]


def test_registry_key_lets_ecr_retire_its_grants(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    key = next(k for k in stack_plan.by_type("aws:kms/key:Key") if k.name.endswith("-keys-registry"))
    statements = {s["Sid"]: s for s in policy_json(key.inputs["policy"])["Statement"]}
    retire = statements["EcrRetiresItsGrants"]
    assert retire["Action"] == "kms:RetireGrant"
    assert retire["Condition"]["StringEquals"]["kms:ViaService"] == [f"ecr.{spec.region}.amazonaws.com"]
    for other in ("-keys-data", "-keys-cluster", "-keys-logs"):
        key = next(k for k in stack_plan.by_type("aws:kms/key:Key") if k.name.endswith(other))
        assert "EcrRetiresItsGrants" not in {
            s.get("Sid") for s in policy_json(key.inputs["policy"])["Statement"]
        }


def test_node_roles_can_fill_the_caches_on_first_pull(stack_plan: Plan) -> None:
    """Kubelet pulls with the node role; the first pull through a cache creates the repository and imports the
    image, so both node roles hold ecr:CreateRepository and ecr:BatchImportUpstreamImage on the cache prefixes
    and nowhere else (review rt-data U5, rt-cluster 16)."""
    _, spec = PROJECT.load(stack_plan.stack)
    base = f"arn:aws:ecr:{spec.region}:{spec.account_id}:repository/"
    caches = sorted(f"{base}{c.repository_prefix}/*" for c in spec.registry.pull_through_caches)
    assert caches, "every shipped stack has at least one pull-through cache"
    roles = {r.urn: r for r in stack_plan.by_type("aws:iam/role:Role")}
    node_roles = {
        urn
        for urn, r in roles.items()
        if r.inputs["name"] in (f"{stack_plan.stack}-eks-system-node", f"{stack_plan.stack}-karpenter-node")
    }
    assert len(node_roles) == 2
    for urn in node_roles:
        fills = [
            s
            for p in stack_plan.by_type("aws:iam/rolePolicy:RolePolicy")
            if p.property_dependencies.get("role") == [urn]
            for s in policy_json(p.inputs["policy"])["Statement"]
            if "ecr:CreateRepository" in s["Action"]
        ]
        assert len(fills) == 1, urn
        assert sorted(fills[0]["Action"]) == ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
        assert sorted(fills[0]["Resource"]) == caches


def test_mirrored_nvidia_images_get_immutable_repositories_and_the_charts_use_them() -> None:
    """nvcr.io is no pull-through upstream: with registry.nvidia_images_mirrored (the default; the shipped stacks
    opt out until the images are copied) the environment has its own immutable, encrypted mirror repositories
    and both NVIDIA charts pull from them."""
    import copy
    import dataclasses

    from mlstack.plan.recorder import run_program
    from mlstack.spec import PlatformSpec
    from mlstack.spec.loader import SPEC_KEY

    config, shipped = PROJECT.load("dev")
    assert shipped.registry.nvidia_images_mirrored is False, "the shipped stacks name the opt-out"
    values = copy.deepcopy(config.values)
    values[SPEC_KEY]["registry"].pop("nvidia_images_mirrored")
    variant = dataclasses.replace(config, values=values)
    plan = run_program(PROJECT.program, variant, PlatformSpec.model_validate(values[SPEC_KEY]))
    repositories = {r.inputs["name"]: r for r in plan.by_type("aws:ecr/repository:Repository")}
    host = f"{shipped.account_id}.dkr.ecr.{shipped.region}.amazonaws.com"
    for name in ("dev/nvidia-device-plugin", "dev/dcgm-exporter"):
        assert repositories[name].inputs["imageTagMutability"] == "IMMUTABLE"
        assert repositories[name].inputs["encryptionConfigurations"][0]["encryptionType"] == "KMS"
    releases = {r.inputs["name"]: r for r in plan.by_type("kubernetes:helm.sh/v3:Release")}
    assert releases["nvidia-device-plugin"].inputs["values"]["image"] == {
        "repository": f"{host}/dev/nvidia-device-plugin"
    }
    assert releases["dcgm-exporter"].inputs["values"]["image"] == {"repository": f"{host}/dev/dcgm-exporter"}
    assert "image" not in {
        r.inputs["name"]: r for r in plan_of("dev").by_type("kubernetes:helm.sh/v3:Release")
    }["nvidia-device-plugin"].inputs["values"]
