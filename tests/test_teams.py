"""Team tenancy over the recorded plans: isolation in Kubernetes and in IAM, proven per team and per stack."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.authorization import enable_iam_authentication

from components.teams import CLUSTER_ADMIN_POLICY, GPU_RESOURCE
from mlstack.plan.recorder import Plan, RecordedResource
from tests.k8s_schema import unwrap_secrets, validate_object
from tests.plans import PROJECT, policy_json


def _validate(resource: RecordedResource, kubernetes_version: str) -> None:
    # Secrets delivered into the namespace (Qdrant's keys) carry secret envelopes in the wire format.
    manifest = unwrap_secrets(resource.inputs)
    if manifest["apiVersion"].startswith("kueue.x-k8s.io/"):
        assert manifest["apiVersion"].endswith("/v1beta2"), (
            f"{manifest['kind']} must use Kueue's storage version"
        )
    problems = validate_object(manifest, kubernetes_version)
    assert not problems, problems


def _team_objects(plan: Plan, namespace: str) -> dict[str, list[RecordedResource]]:
    kinds: dict[str, list[RecordedResource]] = {}
    for resource in plan.resources:
        metadata = resource.inputs.get("metadata") if resource.type.startswith("kubernetes:") else None
        if isinstance(metadata, dict) and metadata.get("namespace") == namespace:
            kinds.setdefault(resource.inputs["kind"], []).append(resource)
    return kinds


def test_every_team_namespace_is_fenced_and_valid(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    version = spec.cluster.kubernetes_version
    namespaces = {r.inputs["metadata"]["name"]: r for r in stack_plan.by_type("kubernetes:core/v1:Namespace")}
    assert spec.teams
    for team in spec.teams:
        assert team.name in namespaces
        objects = _team_objects(stack_plan, team.name)
        (quota,) = objects["ResourceQuota"]
        hard = quota.inputs["spec"]["hard"]
        assert hard[f"requests.{GPU_RESOURCE}"] == str(team.gpu_quota + team.gpu_borrowing_limit)
        assert {"requests.cpu", "requests.memory", "persistentvolumeclaims"} <= set(hard)
        assert len(objects["LimitRange"]) == 1
        deny = [
            p
            for p in objects["NetworkPolicy"]
            if p.inputs["spec"]["podSelector"] == {}
            and set(p.inputs["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and "ingress" not in p.inputs["spec"]
            and "egress" not in p.inputs["spec"]
        ]
        assert deny, f"{team.name} has no default-deny NetworkPolicy"
        (local_queue,) = objects["LocalQueue"]
        # Other components bind their own service accounts in team namespaces (the Argo executor Role).
        binding = next(
            b.inputs for b in objects["RoleBinding"] if b.inputs["metadata"]["name"] == "team-member-binding"
        )
        assert binding["subjects"] == [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": team.group}
        ]
        for resource in [namespaces[team.name], *[r for group in objects.values() for r in group]]:
            _validate(resource, version)
        queue_name = local_queue.inputs["spec"]["clusterQueue"]
        (cluster_queue,) = [
            q
            for q in stack_plan.by_type("kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue")
            if q.inputs["metadata"]["name"] == queue_name
        ]
        _validate(cluster_queue, version)
        gpu_group = cluster_queue.inputs["spec"]["resourceGroups"][-1]
        nominal = sum(int(f["resources"][0]["nominalQuota"]) for f in gpu_group["flavors"])
        assert nominal == team.gpu_quota
        assert cluster_queue.inputs["spec"]["namespaceSelector"] == {
            "matchLabels": {"kubernetes.io/metadata.name": team.name}
        }


def test_flavors_follow_the_gpu_pools(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    version = spec.cluster.kubernetes_version
    flavors = stack_plan.by_type("kubernetes:kueue.x-k8s.io/v1beta2:ResourceFlavor")
    labelled = {
        f.inputs["spec"]["nodeLabels"]["mlstack.io/pool"]: f
        for f in flavors
        if "mlstack.io/pool" in f.inputs["spec"].get("nodeLabels", {})
    }
    assert set(labelled) == {pool.name for pool in spec.gpu_pools}
    # The CPU flavors select by architecture: amd64 always, arm64 when a Graviton pool exists.
    by_arch = {
        f.inputs["spec"]["nodeLabels"]["kubernetes.io/arch"]: f
        for f in flavors
        if "kubernetes.io/arch" in f.inputs["spec"].get("nodeLabels", {})
    }
    arches = {"amd64"} | {pool.arch for pool in spec.cpu_pools}
    assert set(by_arch) == arches
    assert len(flavors) == len(labelled) + len(by_arch)
    for flavor in flavors:
        _validate(flavor, version)
    for flavor in labelled.values():
        assert flavor.inputs["spec"]["tolerations"] == [
            {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
        ]
    (release,) = [
        r for r in stack_plan.by_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "kueue"
    ]
    assert release.inputs["version"] == "0.19.2"
    # kubernetes-sigs/kueue@v0.19.2:charts/kueue/README.md; an OCI registry is never a classic repositoryOpts.repo.
    assert release.inputs["chart"] == "oci://registry.k8s.io/kueue/charts/kueue"
    assert not (release.inputs.get("repositoryOpts") or {}).get("repo")


def test_platform_admin_is_the_only_cluster_admin_role(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    admins = [
        a.inputs["principalArn"]
        for a in stack_plan.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
        if a.inputs["policyArn"] == CLUSTER_ADMIN_POLICY
    ]
    role_arns = {r.outputs["arn"] for r in stack_plan.by_type("aws:iam/role:Role")}
    stack_roles = [a for a in admins if a in role_arns]
    assert [a.rsplit("/", 1)[1] for a in stack_roles] == [f"{spec.environment}-platform-admin"]
    assert set(admins) - set(stack_roles) <= set(spec.cluster.admin_principal_arns)


def test_human_roles_need_sso_or_mfa_and_map_to_the_team_group(stack_plan: Plan) -> None:
    _, spec = PROJECT.load(stack_plan.stack)
    roles = {r.inputs["name"]: r for r in stack_plan.by_type("aws:iam/role:Role")}
    entries = {e.inputs["principalArn"]: e for e in stack_plan.by_type("aws:eks/accessEntry:AccessEntry")}
    for team in spec.teams:
        role = roles[f"{spec.environment}-team-{team.name}-human"]
        for statement in policy_json(role.inputs["assumeRolePolicy"])["Statement"]:
            condition = statement["Condition"]
            assert condition.get("Bool") == {
                "aws:MultiFactorAuthPresent": "true"
            } or "aws-reserved/sso.amazonaws.com" in json.dumps(condition.get("ArnLike")), statement
        assert entries[role.outputs["arn"]].inputs["kubernetesGroups"] == [team.group]


def _role_policies(plan: Plan, role_name: str) -> list[dict[str, Any]]:
    return [
        policy_json(p.inputs["policy"])
        for p in plan.by_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] == role_name
    ]


def _buckets(plan: Plan) -> list[str]:
    return [b.inputs["bucket"] for b in plan.by_type("aws:s3/bucket:Bucket") if "bucket" in b.inputs]


@pytest.mark.parametrize("stack", ["dev", "prod"])
@mock_aws
def test_a_team_workload_reaches_only_its_own_prefix(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    _, spec = PROJECT.load(stack)
    team_a, team_b = spec.teams[0].name, spec.teams[1].name
    role_name = f"{spec.environment}-team-{team_a}-workload"
    (role,) = [r for r in plan.by_type("aws:iam/role:Role") if r.inputs["name"] == role_name]
    datasets = next(b for b in _buckets(plan) if b.endswith("-datasets"))
    other = next(b for b in _buckets(plan) if not b.endswith(("-datasets", "-artifacts", "-models")))

    iam = boto3.client("iam", region_name=spec.region)
    s3 = boto3.client("s3", region_name=spec.region)
    for bucket in (datasets, other):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=f"{team_b}/secret.txt", Body=b"b")
        s3.put_object(Bucket=bucket, Key=f"{team_a}/mine.txt", Body=b"a")
    created = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=role.inputs["assumeRolePolicy"])
    policies = _role_policies(plan, role_name)
    assert len(policies) >= 7  # read and write on three buckets, plus image pulls
    for i, document in enumerate(policies):
        iam.put_role_policy(RoleName=role_name, PolicyName=f"p{i}", PolicyDocument=json.dumps(document))
    credentials = boto3.client("sts", region_name=spec.region).assume_role(
        RoleArn=created["Role"]["Arn"], RoleSessionName="isolation"
    )["Credentials"]
    as_team = boto3.client(
        "s3",
        region_name=spec.region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )

    def denied(call: Any, **kwargs: Any) -> bool:
        try:
            call(**kwargs)
        except ClientError as error:
            return error.response["Error"]["Code"] == "AccessDenied"
        return False

    with enable_iam_authentication():
        as_team.put_object(Bucket=datasets, Key=f"{team_a}/new.txt", Body=b"ok")
        assert as_team.get_object(Bucket=datasets, Key=f"{team_a}/mine.txt")["Body"].read() == b"a"
        assert denied(as_team.get_object, Bucket=datasets, Key=f"{team_b}/secret.txt")
        assert denied(as_team.put_object, Bucket=datasets, Key=f"{team_b}/x.txt", Body=b"x")
        assert denied(as_team.put_object, Bucket=datasets, Key=f"{team_a}-archive/x.txt", Body=b"x")
        assert denied(as_team.get_object, Bucket=other, Key=f"{team_a}/mine.txt")
        assert denied(as_team.put_object, Bucket=other, Key=f"{team_a}/x.txt", Body=b"x")


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    """matchLabels only (the team policies use no expressions on pods); an empty selector selects all."""
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def test_team_pods_may_call_scale_to_zero_endpoints_through_the_interceptor(stack_plan: Plan) -> None:
    """An endpoint's ExternalName alias resolves to the KEDA HTTP interceptor in namespace keda; with policies
    enforced, default-deny would drop every call unless some egress rule admits the interceptor pods' port."""
    from components.inference import INTERCEPTOR_POD_LABELS, INTERCEPTOR_PORT, KEDA_NAMESPACE

    _, spec = PROJECT.load(stack_plan.stack)
    policies = [r.inputs for r in stack_plan.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")]
    namespace_labels = {"kubernetes.io/metadata.name": KEDA_NAMESPACE}
    for team in spec.teams:
        admitted = any(
            _selects(peer.get("namespaceSelector", {"matchLabels": {"x": "never"}}), namespace_labels)
            and _selects(peer.get("podSelector", {}), INTERCEPTOR_POD_LABELS)
            and any(
                p.get("port") == INTERCEPTOR_PORT for p in rule.get("ports", [{"port": INTERCEPTOR_PORT}])
            )
            for policy in policies
            if policy["metadata"]["namespace"] == team.name and "Egress" in policy["spec"]["policyTypes"]
            for rule in policy["spec"].get("egress", [])
            for peer in rule.get("to", [])
        )
        assert admitted, f"team {team.name} cannot reach the interceptor"


def test_cluster_queues_cover_efa_on_efa_pools() -> None:
    """Multi-node training pods request vpc.amazonaws.com/efa; a ClusterQueue that does not cover it never admits
    them (kubernetes-sigs/kueue@v0.19.2 flavorassigner.go: "resource %s unavailable in ClusterQueue")."""
    from components.teams import EFA_RESOURCE, cluster_queue_manifest, efa_per_gpu
    from mlstack.spec.gpu import GpuPoolSpec
    from tests.k8s_schema import validate_object

    _, spec = PROJECT.load("prod")
    pools = [
        GpuPoolSpec(
            name="train-efa", workload_class="training", instance_types=["p5.48xlarge"], max_gpus=32, efa=True
        ),
        GpuPoolSpec(name="serve", workload_class="inference", instance_types=["g6"], max_gpus=8),
    ]
    team = spec.teams[0]
    manifest = cluster_queue_manifest(team, {"train-efa": 16, "serve": 0}, efa_per_gpu(pools))
    group = manifest["spec"]["resourceGroups"][-1]
    assert group["coveredResources"] == [GPU_RESOURCE, EFA_RESOURCE]
    quotas = {f["name"]: {r["name"]: r["nominalQuota"] for r in f["resources"]} for f in group["flavors"]}
    # p5.48xlarge: 8 GPUs and 32 EFA interfaces (components/data/gpu_instances.yaml), so 4 per GPU.
    assert quotas["pool-train-efa"] == {GPU_RESOURCE: "16", EFA_RESOURCE: "64"}
    assert quotas["pool-serve"] == {GPU_RESOURCE: "0", EFA_RESOURCE: "0"}
    assert not validate_object(manifest, spec.cluster.kubernetes_version)
    # Without EFA pools nothing changes.
    assert cluster_queue_manifest(team, {"serve": 0}, {})["spec"]["resourceGroups"][-1][
        "coveredResources"
    ] == [GPU_RESOURCE]


def test_cluster_queue_covers_the_scratch_disk_metaflow_steps_request() -> None:
    """Kueue refuses a workload requesting a resource its ClusterQueue does not cover, and every Metaflow step
    requests ephemeral-storage: the CPU group covers it, 10 GiB per core by default or as declared."""
    from components.teams import cluster_queue_manifest

    _, spec = PROJECT.load("dev")
    team = spec.teams[0]
    group = cluster_queue_manifest(team, {})["spec"]["resourceGroups"][0]
    assert group["coveredResources"] == ["cpu", "memory", "ephemeral-storage"]
    scratch = {r["name"]: r["nominalQuota"] for r in group["flavors"][0]["resources"]}["ephemeral-storage"]
    assert scratch == f"{team.cpu_quota * 10}Gi"
    declared = team.model_copy(update={"ephemeral_storage_quota_gib": 50})
    group = cluster_queue_manifest(declared, {})["spec"]["resourceGroups"][0]
    assert {r["name"]: r["nominalQuota"] for r in group["flavors"][0]["resources"]}["ephemeral-storage"] == "50Gi"
    assert not validate_object(cluster_queue_manifest(team, {}), spec.cluster.kubernetes_version)
