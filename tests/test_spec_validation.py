"""Config-validation tier: every kind of bad stack file gets one clear message naming the file and field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlstack.spec import PlatformSpec, Tier
from mlstack.spec.loader import SPEC_KEY, SpecError, load_spec
from tests.plans import PROJECT

DEV = yaml.safe_load(PROJECT.stack_file("dev").read_text())


def _write(tmp_path: Path, document: Any, stack: str = "dev") -> Path:
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(document) if not isinstance(document, str) else document)
    return path


def _mutated(mutate) -> dict[str, Any]:
    document = copy.deepcopy(DEV)
    mutate(document["config"][SPEC_KEY], document["config"])
    return document


def _set(path: str, value: Any):
    def mutate(spec: dict[str, Any], _config: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = spec
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        node[leaf] = value

    return mutate


def _set_all(**values: Any):
    def mutate(spec: dict[str, Any], _config: dict[str, Any]) -> None:
        for key, value in values.items():
            spec[key] = {**spec[key], **value} if isinstance(value, dict) else value

    return mutate


def _disable_workflows_then(mutate):
    def both(spec: dict[str, Any], config: dict[str, Any]) -> None:
        spec["orchestrator"] = {"argo_workflows": False, "metaflow": False}
        mutate(spec, config)

    return both


BAD_INPUTS = {
    "platform images without their cache": (
        _set("registry.pull_through_caches", []),
        "registry.pull_through_caches",
        "no cache rule for public.ecr.aws",
    ),
    "kueue image without the registry.k8s.io cache": (
        _set("registry.pull_through_caches", [{"upstream": "ecr-public"}, {"upstream": "quay"}]),
        "registry.pull_through_caches",
        "no cache rule for registry.k8s.io, which the Kueue controller image",
    ),
    "qdrant image through a cache that does not exist": (
        _set("vector_db.qdrant_image_through_cache", True),
        "registry.pull_through_caches",
        "no cache rule for registry-1.docker.io, which Qdrant's image",
    ),
    "grafana image through a cache that does not exist": (
        _set("metrics.grafana.image_through_cache", True),
        "registry.pull_through_caches",
        "no cache rule for registry-1.docker.io, which Grafana's image",
    ),
    "grafana sso endpoint over http": (
        _set(
            "metrics.grafana.sso",
            {
                "auth_url": "http://idp.example.com/authorize",
                "token_url": "https://idp.example.com/token",
                "api_url": "https://idp.example.com/userinfo",
                "admin_group": "admins",
            },
        ),
        "metrics.grafana.sso.auth_url",
        "^https://",
    ),
    "grafana admin group that would break out of the role expression": (
        _set(
            "metrics.grafana.sso",
            {
                "auth_url": "https://idp.example.com/authorize",
                "token_url": "https://idp.example.com/token",
                "api_url": "https://idp.example.com/userinfo",
                "admin_group": "x') || 'Admin",
            },
        ),
        "metrics.grafana.sso.admin_group",
        "pattern",
    ),
    "grafana sso without an admin group": (
        _set(
            "metrics.grafana.sso",
            {
                "auth_url": "https://idp.example.com/authorize",
                "token_url": "https://idp.example.com/token",
                "api_url": "https://idp.example.com/userinfo",
            },
        ),
        "metrics.grafana.sso.admin_group",
        "required",
    ),
    "argo server auth mode": (
        _set("orchestrator.server_auth_mode", "server"),
        "orchestrator.server_auth_mode",
        "'client' or 'sso'",
    ),
    "sso mode without settings": (
        _set("orchestrator.server_auth_mode", "sso"),
        "orchestrator",
        "sso is not set",
    ),
    "sso callback elsewhere": (
        _set(
            "orchestrator",
            {
                "server_auth_mode": "sso",
                "sso": {"issuer": "https://idp.example.com", "redirect_url": "https://argo.example.com/cb"},
            },
        ),
        "orchestrator.sso",
        "/oauth2/callback",
    ),
    "archive without metaflow": (
        _set("orchestrator", {"metaflow": False, "workflow_archive": True}),
        "orchestrator",
        "workflow_archive",
    ),
    "rds class without db prefix": (
        _set("orchestrator.db_instance_class", "t4g.micro"),
        "orchestrator.db_instance_class",
        "pattern",
    ),
    "metadata image without tag": (
        _set("orchestrator.metadata_service_image", "netflixoss/metaflow_metadata_service"),
        "orchestrator.metadata_service_image",
        "pattern",
    ),
    "two qdrant replicas": (_set("vector_db.replicas", 2), "vector_db.replicas", "Raft majority"),
    "qdrant writer that is no team": (
        _set("vector_db.writer_teams", ["nobody"]),
        "vector_db.writer_teams.0",
        "not a team of this stack",
    ),
    "aurora capacity off the half step": (
        _set("vector_db.aurora_max_acu", 1.3),
        "vector_db.aurora_max_acu",
        "steps of 0.5",
    ),
    "aurora min above max": (
        _set("vector_db", {"aurora_min_acu": 4, "aurora_max_acu": 2}),
        "vector_db",
        "above aurora_max_acu",
    ),
    "snapshots under a team prefix": (
        _set("vector_db.snapshot_prefix", "search/snapshots"),
        "vector_db.snapshot_prefix",
        "team search",
    ),
    "unknown top-level key": (_set("colour", "blue"), "colour", "allowed keys"),
    "unknown nested key": (_set("network.cidrr", "10.0.0.0/16"), "network.cidrr", "allowed keys"),
    "bad tier": (_set("tier", "production"), "tier", "dev"),
    "short account id": (_set("account_id", "1234"), "account_id", "pattern"),
    "bad region": (_set("region", "mars-1"), "region", "pattern"),
    "region differs from aws:region": (_set("region", "eu-west-1"), "region", "aws:region"),
    "invalid cidr": (_set("network.cidr", "10.0.0.0/33"), "network.cidr", "IPv4"),
    "cidr too large": (_set("network.cidr", "10.0.0.0/8"), "network.cidr", "/16 and /24"),
    "subnet outside the vpc": (
        _set("network.private_subnet_cidrs", ["10.99.0.0/20", "10.10.16.0/20"]),
        "network",
        "does not fit inside the VPC CIDR",
    ),
    "overlapping subnets": (
        _set("network.private_subnet_cidrs", ["10.10.0.0/20", "10.10.8.0/21"]),
        "network",
        "overlap",
    ),
    "byo vpc with cidr": (
        _set(
            "network.existing_vpc",
            {
                "vpc_id": "vpc-0123456789abcdef0",
                "cidr": "10.50.0.0/16",
                "private_subnet_ids": ["subnet-01234567", "subnet-89abcdef"],
            },
        ),
        "network",
        "mutually exclusive",
    ),
    "old kubernetes": (_set("cluster.kubernetes_version", "1.29"), "cluster.kubernetes_version", "1.33"),
    "public endpoint open to the world": (
        _set("cluster", {"endpoint_public_access": True, "public_access_cidrs": ["0.0.0.0/0"]}),
        "cluster",
        "0.0.0.0/0",
    ),
    "public endpoint without cidrs": (_set("cluster", {"endpoint_public_access": True}), "cluster", "empty"),
    "node group sizes out of order": (
        _set("cluster.system_nodes", {"min_size": 3, "desired_size": 1, "max_size": 2}),
        "cluster.system_nodes",
        "min_size <= desired_size",
    ),
    "spot system nodes with one type": (
        _set("cluster.system_nodes", {"capacity_type": "spot", "instance_types": ["t3.medium"]}),
        "cluster.system_nodes",
        "at least two instance types",
    ),
    "spot system nodes in a hardened tier": (
        lambda spec, _c: spec.update(
            tier="staging",
            cluster={
                "system_nodes": {"capacity_type": "spot", "instance_types": ["t3a.medium", "t3.medium"]}
            },
        ),
        "cluster.system_nodes.capacity_type",
        "set on-demand",
    ),
    "latest GPU node AMI in a hardened tier": (
        lambda spec, _c: spec.update(tier="prod", cluster={"gpu_node_ami": "latest"}),
        "cluster.gpu_node_ami",
        "pins the GPU node AMI",
    ),
    "GPU node AMI that is no release tag": (
        _set("cluster.gpu_node_ami", "al2023@v20260714"),
        "cluster.gpu_node_ami",
        "String should match pattern",
    ),
    "qdrant replicas on fewer system nodes": (
        lambda spec, _c: spec.update(
            tier="staging",
            cluster={"system_nodes": {"instance_types": ["m7i.large"], "min_size": 2, "desired_size": 2}},
        ),
        "cluster.system_nodes.min_size",
        "Qdrant runs 3 replicas, one per node",
    ),
    "warm endpoint without a prometheus": (
        lambda spec, _c: (
            spec["inference"]["endpoints"][0].update(min_replicas=1),
            spec.update(metrics={"enabled": False}),
        ),
        "inference.prometheus_url",
        "metrics.enabled is off and no prometheus_url is set",
    ),
    "ephemeral metrics in staging": (
        lambda spec, _c: spec.update(tier="staging", metrics={"storage": "ephemeral"}),
        "metrics.storage",
        "keeps its metrics on encrypted persistent volumes",
    ),
    "gpu pool without limit": (
        lambda spec, _c: spec["gpu_pools"][0].pop("max_gpus"),
        "gpu_pools.0.max_gpus",
        "Field required",
    ),
    "non-gpu instance type in a pool": (
        _set("gpu_pools.0.instance_types", ["m5.large"]),
        "gpu_pools.0.instance_types.0",
        "not a known GPU instance type",
    ),
    "misspelt gpu family": (
        _set("gpu_pools.0.instance_types", ["g6x"]),
        "gpu_pools.0.instance_types.0",
        "did you mean g6",
    ),
    "efa on a type without it": (
        lambda spec, _c: spec["gpu_pools"][0].update(
            workload_class="training", instance_types=["g5.xlarge"], efa=True
        ),
        "gpu_pools.0.instance_types.0",
        "no EFA support",
    ),
    "efa on an inference pool": (_set("gpu_pools.0.efa", True), "gpu_pools.0.efa", "training"),
    "mig on gpus without mig": (
        _set("gpu_pools.0.sharing", {"mode": "mig"}),
        "gpu_pools.0.sharing.mode",
        "mig is not supported yet",
    ),
    "mig on a100 nodes, with nothing to partition them": (
        lambda spec, _c: spec["gpu_pools"].__setitem__(
            0,
            {
                "name": "gpu-dev",
                "workload_class": "training",
                "instance_types": ["p4d"],
                "max_gpus": 8,
                "sharing": {"mode": "mig"},
            },
        ),
        "gpu_pools.0.sharing.mode",
        "nothing on the nodes enables MIG",
    ),
    "negative gpu quota": (_set("teams.0.gpu_quota", -1), "teams.0.gpu_quota", "greater than or equal"),
    "duplicate team": (
        lambda spec, _c: spec["teams"].append(dict(spec["teams"][0])),
        "teams",
        "more than once",
    ),
    "endpoint on unknown pool": (
        _set("inference.endpoints.0.gpu_pool", "nope"),
        "inference.endpoints.0.gpu_pool",
        "not a declared pool",
    ),
    "min replicas above max": (
        _set("inference.endpoints.0.min_replicas", 3),
        "inference.endpoints.0",
        "greater than max_replicas",
    ),
    "budget nobody hears": (_set("budgets.notify_emails", []), "budgets", "notify_emails or sns_topic_arn"),
    "missing budget": (lambda spec, _c: spec.pop("budgets"), "budgets", "Field required"),
    "reserved tag prefix": (_set("tags", {"aws:owner": "x"}), "tags", "reserved"),
    "wrong type for a number": (
        _set("storage.noncurrent_version_expiration_days", "soon"),
        "storage",
        "integer",
    ),
    "credentialed upstream without secret": (
        _set("registry.pull_through_caches", [{"upstream": "docker-hub"}]),
        "registry.pull_through_caches.0",
        "needs credentials",
    ),
    "credentials for a public upstream": (
        _set(
            "registry.pull_through_caches",
            [
                {
                    "upstream": "quay",
                    "credential_arn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:ecr-pullthroughcache/q",
                }
            ],
        ),
        "registry.pull_through_caches.0",
        "takes no credentials",
    ),
    "pull-through secret with a bad arn": (
        _set(
            "registry.pull_through_caches",
            [
                {
                    "upstream": "github",
                    "credential_arn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:gh",
                }
            ],
        ),
        "registry.pull_through_caches.0.credential_arn",
        "ecr-pullthroughcache",
    ),
    "pull-through secret in another account": (
        _set(
            "registry.pull_through_caches",
            [
                {
                    "upstream": "github",
                    "credential_arn": "arn:aws:secretsmanager:us-east-1:999999999999:secret:ecr-pullthroughcache/gh",
                }
            ],
        ),
        "registry.pull_through_caches.0.credential_arn",
        "account 111122223333",
    ),
    "duplicate pull-through prefix": (
        _set("registry.pull_through_caches", [{"upstream": "quay"}, {"upstream": "k8s", "prefix": "quay"}]),
        "registry.pull_through_caches",
        "more than once",
    ),
    "pull-through prefix shadows the environment": (
        _set("registry.pull_through_caches", [{"upstream": "quay", "prefix": "dev"}]),
        "registry.pull_through_caches.0.prefix",
        "own repositories",
    ),
    "registry replication to its own region": (
        _set("registry.replication_region", "us-east-1"),
        "registry.replication_region",
        "another region",
    ),
    "models replication to its own region": (
        _set("storage.models_replication_region", "us-east-1"),
        "storage.models_replication_region",
        "another region",
    ),
    "models replication without a models bucket": (
        _set("storage", {"buckets": ["datasets"], "models_replication_region": "us-west-2"}),
        "storage.models_replication_region",
        "needs a models bucket",
    ),
    "negative expected volume": (
        _set("storage.expected_gb", {"models": -1}),
        "storage.expected_gb",
        "negative",
    ),
    "unknown bucket purpose": (_set("storage.buckets", ["logs"]), "storage.buckets.0", "datasets"),
    "bad repository name": (
        _set("registry.repositories", ["Training"]),
        "registry.repositories.0",
        "pattern",
    ),
    "reserved kubernetes group": (
        _set("teams.0.kubernetes_group", "system:masters"),
        "teams.0.kubernetes_group",
        "reserves",
    ),
    "shared kubernetes group": (
        lambda spec, _c: [t.update(kubernetes_group="ml") for t in spec["teams"]],
        "teams (kubernetes_group)",
        "more than once",
    ),
    "human access nobody can use": (
        _set("teams.0.human_access", {"sso_permission_sets": []}),
        "teams.0.human_access",
        "sso_permission_sets or mfa_principals",
    ),
    "mfa principal is an account root": (
        _set("teams.0.human_access", {"mfa_principals": ["arn:aws:iam::444455556666:root"]}),
        "teams.0.human_access.mfa_principals",
        "every identity of an account",
    ),
    "mfa principal is a wildcard": (
        _set("teams.0.human_access", {"mfa_principals": ["arn:aws:iam::444455556666:role/*"]}),
        "teams.0.human_access.mfa_principals",
        "pattern",
    ),
    "mfa age too short": (
        _set(
            "teams.0.human_access",
            {"mfa_principals": ["arn:aws:iam::444455556666:role/x"], "max_mfa_age_seconds": 1},
        ),
        "teams.0.human_access.max_mfa_age_seconds",
        "greater than or equal to 900",
    ),
    "split does not add up": (
        _set("teams.0.gpu_quota_by_pool", {"gpu-dev": 1}),
        "teams.0",
        "adds up to 1 but gpu_quota is 2",
    ),
    "split on an unknown pool": (
        _set("teams.0.gpu_quota_by_pool", {"gpu-dev": 1, "tpu": 1}),
        "teams.0.gpu_quota_by_pool",
        "not declared pools",
    ),
    "teams oversubscribe a pool": (
        _set("teams.0.gpu_quota", 4),
        "teams",
        "more than its max_gpus",
    ),
    "negative borrowing limit": (
        _set("teams.0.gpu_borrowing_limit", -1),
        "teams.0.gpu_borrowing_limit",
        "greater than or equal",
    ),
    "zero cpu quota": (_set("teams.0.cpu_quota", 0), "teams.0.cpu_quota", "greater than or equal"),
    "bad team cost center": (_set("teams.0.cost_center", "a b"), "teams.0.cost_center", "pattern"),
    "team budget for an unknown team": (
        _set("budgets.team_limits_usd", {"ghosts": 10}),
        "budgets.team_limits_usd.ghosts",
        "not a declared team",
    ),
    "zero team budget": (
        _set("budgets.team_limits_usd", {"search": 0}),
        "budgets.team_limits_usd.search",
        "greater than 0",
    ),
    "too many budget thresholds": (
        _set("budgets.thresholds_percent", [10, 20, 30, 40, 50]),
        "budgets.thresholds_percent",
        "at most 4",
    ),
    "bad log retention": (
        _set("network.flow_logs_retention_days", 45),
        "network.flow_logs_retention_days",
        "CloudWatch",
    ),
    "orchestrator and vector database without an artifacts bucket": (
        _set("storage.buckets", ["datasets", "models"]),
        "storage.buckets",
        "no 'artifacts' bucket, which the orchestrator (workflow artifacts, Metaflow datastore), the vector "
        "database (snapshots) write to",
    ),
    "vector database alone without an artifacts bucket": (
        _disable_workflows_then(_set("storage.buckets", ["models"])),
        "storage.buckets",
        "which the vector database (snapshots) write to",
    ),
    "environment name too long for its bucket names": (
        _set("environment", "a" * 32),
        "environment",
        f"bucket name '{'a' * 32}-111122223333-us-east-1-access-logs' would be 67 characters, more than S3's 63; "
        "shorten the environment name by 4",
    ),
    "models replica region makes the longest bucket name": (
        _set_all(environment="a" * 24, storage={"models_replication_region": "ap-southeast-2"}),
        "environment",
        f"bucket name '{'a' * 24}-111122223333-ap-southeast-2-models-replica' would be 67 characters",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS), ids=sorted(BAD_INPUTS))
def test_bad_input_names_file_and_field(tmp_path: Path, case: str) -> None:
    mutate, field_path, fragment = BAD_INPUTS[case]
    path = _write(tmp_path, _mutated(mutate))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert field_path in message, message
    assert fragment in message, message
    assert "Traceback" not in message


def test_hardened_tiers_refuse_single_az_and_unprotected_data(tmp_path: Path) -> None:
    def mutate(spec: dict[str, Any], _config: dict[str, Any]) -> None:
        spec.update(tier="prod", protect_stateful=False, network={"cidr": "10.10.0.0/16", "az_count": 1})

    with pytest.raises(SpecError) as caught:
        load_spec(_write(tmp_path, _mutated(mutate)))
    paths = {problem.path for problem in caught.value.problems}
    assert {"protect_stateful", "network.az_count"} <= paths


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    def mutate(spec: dict[str, Any], _config: dict[str, Any]) -> None:
        spec.update(account_id="12", tier="qa")
        spec["network"]["cidr"] = "nonsense"

    with pytest.raises(SpecError) as caught:
        load_spec(_write(tmp_path, _mutated(mutate)))
    assert {p.path for p in caught.value.problems} >= {"account_id", "tier", "network.cidr"}


def test_missing_region_and_spec(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(_write(tmp_path, {"config": {}}))
    paths = {p.path for p in caught.value.problems}
    assert paths == {"config.aws:region", f"config.{SPEC_KEY}"}


def test_yaml_syntax_error_gives_position(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(_write(tmp_path, "config:\n  aws:region: [unclosed\n"))
    assert "line" in str(caught.value) and "not valid YAML" in str(caught.value)


def test_missing_file_lists_known_stacks(tmp_path: Path) -> None:
    _write(tmp_path, DEV, "dev")
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "Pulumi.qa.yaml")
    assert "does not exist" in str(caught.value) and "dev" in str(caught.value)


# The metrics section without dev's Grafana: only OpenCost's image opt-out (dev's registry has no github cache).
NO_GITHUB_METRICS = {"opencost": {"images_through_cache": False}}


def test_tier_defaults_apply_only_where_the_file_is_silent() -> None:
    base = DEV["config"][SPEC_KEY]
    # Dev's Spot system nodes are refused in prod, so prod takes the cluster defaults; dev's Grafana (no SSO) as well.
    # OpenCost keeps dev's image opt-out: dev's registry has no github cache.
    prod = PlatformSpec.model_validate(
        {**base, "tier": "prod", "network": {"cidr": "10.0.0.0/16"}, "cluster": {}, "metrics": NO_GITHUB_METRICS}
    )
    assert prod.tier is Tier.PROD
    assert (prod.network.az_count, prod.network.nat_gateways, prod.network.interface_endpoints) == (
        3,
        "per_az",
        True,
    )
    assert prod.protect_stateful and prod.registry.enhanced_scanning
    dev = PlatformSpec.model_validate({**base, "network": {"cidr": "10.0.0.0/16", "az_count": 3}})
    assert (dev.network.az_count, dev.network.nat_gateways, dev.protect_stateful) == (3, "single", False)


def test_default_subnets_fit_and_do_not_overlap() -> None:
    for count in range(1, 7):
        spec = PlatformSpec.model_validate(
            {**DEV["config"][SPEC_KEY], "network": {"cidr": "10.0.0.0/16", "az_count": count}}
        )
        subnets = spec.network.private_subnets() + spec.network.public_subnets()
        assert len(subnets) == 2 * count
        assert all(s.subnet_of(spec.network.cidr) for s in subnets)
        assert not any(a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1 :])


@pytest.mark.parametrize("stack", PROJECT.stack_names())
def test_shipped_stacks_are_valid(stack: str) -> None:
    _, spec = load_spec(PROJECT.stack_file(stack))
    assert spec.environment == stack


def test_prod_refuses_fragile_workflow_and_vector_databases(tmp_path: Path) -> None:
    def mutate(spec: dict[str, Any], _config: dict[str, Any]) -> None:
        spec.update(
            tier="prod",
            orchestrator={"db_multi_az": False, "backup_retention_days": 3},
            vector_db={"replicas": 1},
        )

    with pytest.raises(SpecError) as caught:
        load_spec(_write(tmp_path, _mutated(mutate)))
    paths = {problem.path for problem in caught.value.problems}
    assert {"orchestrator.db_multi_az", "orchestrator.backup_retention_days", "vector_db.replicas"} <= paths


def test_workflow_tier_defaults() -> None:
    base = DEV["config"][SPEC_KEY]
    # The dev registry has no docker-hub cache: Qdrant's image opts out of it, as the shipped stacks do.
    vector_db = {"qdrant_image_through_cache": False}
    dev = PlatformSpec.model_validate({**base, "orchestrator": {}, "vector_db": vector_db})
    prod = PlatformSpec.model_validate(
        {**base, "tier": "prod", "cluster": {}, "orchestrator": {}, "vector_db": vector_db, "metrics": NO_GITHUB_METRICS}
    )
    assert (dev.orchestrator.db_instance_class, dev.orchestrator.db_multi_az) == ("db.t4g.micro", False)
    assert (prod.orchestrator.db_multi_az, prod.orchestrator.backup_retention_days) == (True, 14)
    assert (dev.vector_db.replicas, prod.vector_db.replicas) == (1, 3)
    assert (dev.vector_db.aurora_min_acu, prod.vector_db.aurora_min_acu) == (0.0, 2.0)
