"""Inference endpoints in the recorded plans: placement, provenance, least privilege, hardening, scaling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mlstack.catalog import gpu_catalog
from mlstack.plan.recorder import Plan, RecordedResource
from mlstack.spec.inference import EndpointSpec, ecr_registry_host
from tests.plans import PROJECT, ROOT, STACKS, plan_of, policy_json


def _crd_dir() -> Path:
    for folder in (ROOT, *ROOT.parents):
        candidate = folder / "shared" / "crds"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("shared/crds not found above the repository root")


def _crd_schema(filename: str) -> dict[str, Any]:
    crd = yaml.safe_load((_crd_dir() / filename).read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    return version["schema"]["openAPIV3Schema"]


def _endpoints(stack: str) -> list[EndpointSpec]:
    return list(PROJECT.load(stack)[1].inference.endpoints)


def _kubernetes(stack: str) -> list[EndpointSpec]:
    return [e for e in _endpoints(stack) if e.backend == "kubernetes"]


def _named(plan: Plan, type_: str, name: str) -> RecordedResource:
    matches = [r for r in plan.by_type(type_) if r.name == name]
    assert len(matches) == 1, f"{type_} {name}: {len(matches)} found"
    return matches[0]


def _deployment(plan: Plan, endpoint: EndpointSpec) -> dict[str, Any]:
    return _named(
        plan, "kubernetes:apps/v1:Deployment", f"{plan.stack}-inference-{endpoint.name}-deployment"
    ).inputs


CASES = [(stack, e.name) for stack in STACKS for e in _kubernetes(stack)]
SAGEMAKER = [(stack, e.name) for stack in STACKS for e in _endpoints(stack) if e.backend == "sagemaker"]


def _endpoint(stack: str, name: str) -> EndpointSpec:
    return next(e for e in _endpoints(stack) if e.name == name)


def test_dev_scales_to_zero_and_prod_has_a_sagemaker_endpoint() -> None:
    assert any(e.scales_to_zero and e.runtime == "vllm" for e in _kubernetes("dev"))
    prod = _endpoints("prod")
    assert len(prod) >= 2 and any(e.backend == "sagemaker" for e in prod)
    assert plan_of("prod").by_type("aws:sagemaker/endpoint:Endpoint")


@pytest.mark.parametrize(("stack", "name"), CASES)
def test_gpu_requests_match_the_pool_and_tolerate_its_taint(stack: str, name: str) -> None:
    plan, endpoint = plan_of(stack), _endpoint(stack, name)
    spec = PROJECT.load(stack)[1]
    pool = next(p for p in spec.gpu_pools if p.name == endpoint.gpu_pool)
    pod = _deployment(plan, endpoint)["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"mlstack.io/pool": pool.name}
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    server = next(c for c in pod["containers"] if c["name"] == "server")
    gpus = str(endpoint.gpus_per_replica)
    assert server["resources"]["requests"]["nvidia.com/gpu"] == gpus
    assert server["resources"]["limits"]["nvidia.com/gpu"] == gpus
    largest = max(t.gpu_count for s in pool.instance_types for t in gpu_catalog().expand(s))
    assert endpoint.gpus_per_replica <= min(largest, pool.max_gpus)
    if endpoint.runtime == "vllm":
        args = server["args"]
        assert args[args.index("--tensor-parallel-size") + 1] == gpus
        assert args[args.index("--model") + 1] == "/models"
        assert args[args.index("--port") + 1] == str(endpoint.port)
    if endpoint.runtime == "triton":
        assert "--model-repository=/models" in server["args"]
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["medium"] == "Memory"


@pytest.mark.parametrize(("stack", "name"), CASES)
def test_images_come_from_the_platform_registry(stack: str, name: str) -> None:
    plan, endpoint = plan_of(stack), _endpoint(stack, name)
    spec = PROJECT.load(stack)[1]
    host = ecr_registry_host(spec.account_id, spec.region)
    allowed = [f"{host}/{spec.environment}/{r}:" for r in spec.registry.repositories] + [
        f"{host}/{c.repository_prefix}/" for c in spec.registry.pull_through_caches
    ]
    pod = _deployment(plan, endpoint)["spec"]["template"]["spec"]
    for container in pod["containers"] + pod["initContainers"]:
        assert container["image"].startswith(tuple(allowed)), container["image"]


@pytest.mark.parametrize(("stack", "name"), CASES + SAGEMAKER)
def test_endpoint_role_reads_only_its_model_prefix(stack: str, name: str) -> None:
    plan, endpoint = plan_of(stack), _endpoint(stack, name)
    role = _named(plan, "aws:iam/role:Role", f"{stack}-inference-{name}-role")
    policies = [
        policy_json(p.inputs["policy"])
        for p in plan.by_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] == role.inputs["name"]
    ]
    s3_statements = [
        s
        for doc in policies
        for s in doc["Statement"]
        if any(a.startswith("s3:") for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    ]
    assert s3_statements
    prefix = endpoint.model_location.prefix
    bucket_arn = f"arn:aws:s3:::{endpoint.model_location.bucket}"
    for statement in s3_statements:
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        for resource in resources:
            if resource == bucket_arn:  # listing, limited to the prefix by condition
                assert statement["Condition"]["StringLike"]["s3:prefix"] == [prefix, f"{prefix}*"]
            elif resource.startswith(bucket_arn):
                assert resource == f"{bucket_arn}/{prefix}*"
            else:  # data capture writes under its own prefix of the artifacts bucket
                capture = f"inference-capture/{name}/"
                assert endpoint.backend == "sagemaker" and endpoint.data_capture_percent
                assert resource.endswith(f"/{capture}*") or statement["Condition"]["StringLike"][
                    "s3:prefix"
                ] == [
                    capture,
                    f"{capture}*",
                ]
    assert not any(s["Resource"] == "*" for s in s3_statements)


@pytest.mark.parametrize(("stack", "name"), CASES)
def test_pods_are_locked_down_and_probed(stack: str, name: str) -> None:
    plan, endpoint = plan_of(stack), _endpoint(stack, name)
    pod = _deployment(plan, endpoint)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"] + pod["initContainers"]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    server = next(c for c in pod["containers"] if c["name"] == "server")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"]["port"] == endpoint.port
    startup = server["startupProbe"]
    assert 15 * 60 <= startup["periodSeconds"] * startup["failureThreshold"] <= 20 * 60
    loader = pod["initContainers"][0]
    assert loader["command"][:3] == ["aws", "s3", "sync"] and endpoint.model_location.uri in loader["command"]
    identity = _named(
        plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation", f"{stack}-inference-{name}-identity"
    ).inputs
    assert (identity["namespace"], identity["serviceAccount"]) == (endpoint.team, pod["serviceAccountName"])


@pytest.mark.parametrize(("stack", "name"), CASES)
def test_every_endpoint_has_service_budget_and_network_policy(stack: str, name: str) -> None:
    plan, endpoint = plan_of(stack), _endpoint(stack, name)
    base = f"{stack}-inference-{name}"
    services = [
        r.inputs for r in plan.by_type("kubernetes:core/v1:Service") if r.name.startswith(f"{base}-service")
    ]
    assert {s["metadata"]["namespace"] for s in services} == {endpoint.team}
    caller = next(s for s in services if s["metadata"]["name"] == name)
    assert caller["spec"]["type"] == ("ExternalName" if endpoint.scales_to_zero else "ClusterIP")
    _named(plan, "kubernetes:policy/v1:PodDisruptionBudget", f"{base}-pdb")
    policy = _named(plan, "kubernetes:networking.k8s.io/v1:NetworkPolicy", f"{base}-netpol").inputs
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    for rule in policy["spec"]["ingress"]:
        assert all("ipBlock" not in peer or peer["ipBlock"]["cidr"] != "0.0.0.0/0" for peer in rule["from"])


@pytest.mark.parametrize(("stack", "name"), CASES)
def test_scalers_validate_against_the_keda_crds(stack: str, name: str) -> None:
    plan, endpoint = plan_of(stack), _endpoint(stack, name)
    kind = "HTTPScaledObject" if endpoint.scales_to_zero else "ScaledObject"
    crd = "http.keda.sh_httpscaledobjects.yaml" if endpoint.scales_to_zero else "keda.sh_scaledobjects.yaml"
    scaler = next(
        r.inputs
        for r in plan.resources
        if r.name == f"{stack}-inference-{name}-scaler" and r.type.endswith(kind)
    )
    jsonschema.validate({k: scaler[k] for k in ("apiVersion", "kind", "spec")}, _crd_schema(crd))
    if endpoint.scales_to_zero:
        assert scaler["spec"]["replicas"] == {"min": 0, "max": endpoint.max_replicas}
    else:
        assert (scaler["spec"]["minReplicaCount"], scaler["spec"]["maxReplicaCount"]) == (
            endpoint.min_replicas,
            endpoint.max_replicas,
        )


def test_built_in_kinds_validate_against_the_kubernetes_schema(stack_plan: Plan) -> None:
    import kubernetes_validate

    kinds = {
        "kubernetes:apps/v1:Deployment": ("apps/v1", "Deployment"),
        "kubernetes:core/v1:Service": ("v1", "Service"),
        "kubernetes:core/v1:ServiceAccount": ("v1", "ServiceAccount"),
        "kubernetes:policy/v1:PodDisruptionBudget": ("policy/v1", "PodDisruptionBudget"),
        "kubernetes:networking.k8s.io/v1:NetworkPolicy": ("networking.k8s.io/v1", "NetworkPolicy"),
        "kubernetes:networking.k8s.io/v1:Ingress": ("networking.k8s.io/v1", "Ingress"),
    }
    checked = 0
    for resource in stack_plan.resources:
        if resource.type in kinds and "-inference-" in resource.name:
            api_version, kind = kinds[resource.type]
            document = {**resource.inputs, "apiVersion": api_version, "kind": kind}
            kubernetes_validate.validate(document, "1.33", strict=True)
            checked += 1
    assert checked > 0


def test_charts_are_pinned_and_installed_only_when_needed(stack_plan: Plan) -> None:
    endpoints = _kubernetes(stack_plan.stack)
    releases = {
        r.inputs["chart"]: r.inputs
        for r in stack_plan.by_type("kubernetes:helm.sh/v3:Release")
        if "-inference-" in r.name
    }
    expected = {"keda"} if endpoints else set()
    if any(e.scales_to_zero for e in endpoints):
        expected.add("keda-add-ons-http")
    if any(e.exposure == "internal-alb" for e in endpoints):
        expected.add("aws-load-balancer-controller")
    assert set(releases) == expected
    for release in releases.values():
        assert release["version"] and release["repositoryOpts"]["repo"].startswith("https://")


def test_internal_alb_is_never_internet_facing() -> None:
    plan = plan_of("prod")
    ingresses = [r.inputs for r in plan.by_type("kubernetes:networking.k8s.io/v1:Ingress")]
    assert ingresses
    for ingress in ingresses:
        assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"] == "internal"


def test_internal_alb_serves_https_with_the_endpoints_certificate(stack_plan: Plan) -> None:
    for endpoint in _kubernetes(stack_plan.stack):
        if endpoint.exposure != "internal-alb":
            continue
        annotations = _named(
            stack_plan,
            "kubernetes:networking.k8s.io/v1:Ingress",
            f"{stack_plan.stack}-inference-{endpoint.name}-ingress",
        ).inputs["metadata"]["annotations"]
        if endpoint.certificate_arn is None:
            assert stack_plan.stack == "dev"
            assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTP": 80}]'
            continue
        assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS": 443}]'
        assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == endpoint.certificate_arn
        assert annotations["alb.ingress.kubernetes.io/ssl-policy"].startswith("ELBSecurityPolicy-TLS13")


@pytest.mark.parametrize(("stack", "name"), SAGEMAKER)
def test_sagemaker_endpoint_is_encrypted_private_and_autoscaled(stack: str, name: str) -> None:
    plan, endpoint = plan_of(stack), _endpoint(stack, name)
    base = f"{stack}-inference-{name}"
    model = _named(plan, "aws:sagemaker/model:Model", f"{base}-model").inputs
    assert model["enableNetworkIsolation"] is endpoint.network_isolation
    assert model["primaryContainer"]["image"] == endpoint.image
    source = model["primaryContainer"]["modelDataSource"]["s3DataSources"][0]
    assert source["s3Uri"] == endpoint.model_location.uri and source["s3DataType"] == "S3Prefix"
    subnets = model["vpcConfig"]["subnets"]
    network = plan.by_type("aws:ec2/subnet:Subnet")
    private = {r.id for r in network if "private" in r.name}
    assert subnets and set(subnets) <= private
    config = _named(
        plan, "aws:sagemaker/endpointConfiguration:EndpointConfiguration", f"{base}-config"
    ).inputs
    # NVMe instance-store types refuse a KmsKeyId (CreateEndpointConfig); their volumes are hardware-encrypted.
    assert "kmsKeyArn" not in config
    # Replaceable: no fixed names, so create-before-delete never collides (every argument forces replacement).
    assert "name" not in model and "name" not in config
    variant = config["productionVariants"][0]
    assert variant["instanceType"] == endpoint.sagemaker_instance_type
    if endpoint.data_capture_percent:
        assert config["dataCaptureConfig"]["destinationS3Uri"].endswith(f"/inference-capture/{name}/")
    target = _named(plan, "aws:appautoscaling/target:Target", f"{base}-scaling-target").inputs
    assert (target["minCapacity"], target["maxCapacity"]) == (endpoint.min_replicas, endpoint.max_replicas)
    _named(plan, "aws:appautoscaling/policy:Policy", f"{base}-scaling-policy")
    role = _named(plan, "aws:iam/role:Role", f"{base}-role").inputs
    assert "sagemaker.amazonaws.com" in role["assumeRolePolicy"]
    pulls = [
        s
        for p in plan.by_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] == role["name"]
        for s in policy_json(p.inputs["policy"])["Statement"]
        if "ecr:BatchGetImage" in s["Action"]
    ]
    spec = PROJECT.load(stack)[1]
    assert pulls and all(
        r.startswith(f"arn:aws:ecr:{spec.region}:{spec.account_id}:repository/")
        for s in pulls
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    )


# -- Comes up on the first try (issue 15) -------------------------------------------------------------------


def _quantity(value: str) -> float:
    """A Kubernetes quantity as a number (cpu in cores, memory in bytes)."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix in sorted(units, key=len, reverse=True):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * units[suffix]
    return float(value)


def _limit_range(plan: Plan, namespace: str) -> dict[str, Any]:
    ranges = [
        r.inputs
        for r in plan.by_type("kubernetes:core/v1:LimitRange")
        if r.inputs["metadata"]["namespace"] == namespace
    ]
    (container,) = [item for r in ranges for item in r["spec"]["limits"] if item["type"] == "Container"]
    return container


def test_endpoint_pods_pass_the_team_limit_range(stack_plan: Plan) -> None:
    """LimitRanger fills a missing limit with the namespace default, then admission refuses any request above
    its limit (kubernetes/website concepts/policy/limit-range.md): every container must still fit."""
    checked = 0
    for deployment in stack_plan.by_type("kubernetes:apps/v1:Deployment"):
        if "-inference-" not in deployment.name:
            continue
        defaults = _limit_range(stack_plan, deployment.inputs["metadata"]["namespace"])
        pod = deployment.inputs["spec"]["template"]["spec"]
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            resources = container.get("resources", {})
            limits = {**defaults.get("default", {}), **resources.get("limits", {})}
            requests = {**defaults.get("defaultRequest", {}), **limits, **resources.get("requests", {})}
            for resource in ("cpu", "memory"):
                assert _quantity(str(requests[resource])) <= _quantity(str(limits[resource])), (
                    deployment.name,
                    container["name"],
                    resource,
                )
            checked += 1
    assert checked or not _kubernetes(stack_plan.stack)


def test_http_addon_interceptor_pdb_sets_one_field() -> None:
    """The chart renders every non-zero PDB field and defaults maxUnavailable to 1; a PDB with both is refused
    by the API server (kedacore/charts@c4b92e9:http-add-on/templates/interceptor/poddisruptionbudget.yaml).
    Rendered with the real helm against the packaged chart (deploy simulation)."""
    from mlstack.simulate.objects import chart_objects
    from tests.simulation import world_of

    budgets = [
        o.obj["spec"]
        for o in chart_objects(world_of("dev"))
        if o.release == "keda-add-ons-http" and o.kind == "PodDisruptionBudget"
    ]
    assert budgets
    for spec in budgets:
        assert ("minAvailable" in spec) != ("maxUnavailable" in spec), spec


def test_http_addon_installs_after_keda() -> None:
    """The add-on's chart has a keda.sh ScaledObject; its CRD comes with the KEDA release."""
    plan = plan_of("dev")
    releases = {r.inputs["name"]: r for r in plan.by_type("kubernetes:helm.sh/v3:Release")}
    assert releases["keda"].urn in releases["keda-add-ons-http"].dependencies


def _lb_statements(plan: Plan) -> list[dict[str, Any]]:
    (policy,) = [
        p for p in plan.by_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("lb-controller-policy")
    ]
    return policy_json(policy.inputs["policy"])["Statement"]


def test_lb_controller_can_open_target_ports_on_the_cluster_security_group() -> None:
    """target-type ip: the controller authorizes ingress on the target ENI's group, the untagged EKS cluster
    security group (aws-load-balancer-controller@v2.13.0 networking_manager.go)."""
    plan = plan_of("prod")
    (vpc,) = plan.by_type("aws:ec2/vpc:Vpc")
    vpc_arn = vpc.outputs["arn"]
    opening = [
        s
        for s in _lb_statements(plan)
        if s["Effect"] == "Allow"
        and "ec2:AuthorizeSecurityGroupIngress" in s["Action"]
        and "aws:ResourceTag/elbv2.k8s.aws/cluster" not in str(s.get("Condition", {}))
    ]
    assert opening, (
        "only controller-tagged security groups can be opened; the cluster security group is not one"
    )
    for statement in opening:
        assert statement["Condition"] == {"ArnEquals": {"ec2:Vpc": vpc_arn}}


def test_lb_controller_may_create_the_elb_service_linked_role_only() -> None:
    statements = [
        s for s in _lb_statements(plan_of("prod")) if "iam:CreateServiceLinkedRole" in str(s["Action"])
    ]
    assert statements == [
        {
            "Sid": "ElbServiceLinkedRole",
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": "*",
            "Condition": {"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
        }
    ]


def test_every_sagemaker_capable_gpu_type_has_instance_storage() -> None:
    """The component sets no KmsKeyId because every catalogued GPU family has NVMe instance storage."""
    from components.inference import INSTANCE_STORE_FAMILIES

    assert set(gpu_catalog().families) <= INSTANCE_STORE_FAMILIES


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_warm_endpoints_scale_on_a_prometheus_the_platform_installs(stack: str) -> None:
    plan = plan_of(stack)
    warm = [e for e in _kubernetes(stack) if not e.scales_to_zero]
    assert warm
    charts = {
        str(r.inputs["chart"]).rsplit("/", 1)[-1] for r in plan.by_type("kubernetes:helm.sh/v3:Release")
    }
    assert charts & {"kube-prometheus-stack", "prometheus"}, "no Prometheus is installed"


def test_policy_pack_knows_the_same_instance_store_families() -> None:
    """MLS-SM-002 asks for a KmsKeyId exactly where SageMaker allows one; the component sets none on these."""
    from components.inference import INSTANCE_STORE_FAMILIES
    from policies.sagemaker import DEFAULT_LOCAL_STORAGE_FAMILIES

    assert set(DEFAULT_LOCAL_STORAGE_FAMILIES) == INSTANCE_STORE_FAMILIES
