"""Kubernetes rules on what the platform installs in the cluster."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, StackValidationArgs

from policies.framework import Severity, as_list, resource_rule, resources_of, stack_context, stack_rule

STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
EBS_CSI = "ebs.csi.aws.com"


@resource_rule(
    "MLS-K8S-001",
    types=[STORAGE_CLASS],
    title="EBS storage classes encrypt volumes",
    why="Persistent volumes hold notebooks, checkpoints and vector indexes; an unencrypted class makes every "
    "claim on it unencrypted.",
    severity=Severity.HIGH,
    controls={"aws-fsbp": ["EC2.3"]},
    remediation="Set parameters.encrypted 'true' (and kmsKeyId) on every ebs.csi.aws.com StorageClass.",
)
def storage_class_encrypted(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    parameters = args.props.get("parameters") or {}
    if args.props.get("provisioner") == EBS_CSI and str(parameters.get("encrypted")).lower() != "true":
        yield "parameters.encrypted is not 'true'"


@resource_rule(
    "MLS-K8S-002",
    types=[STORAGE_CLASS],
    title="Storage classes in staging and prod retain volumes",
    why="With reclaimPolicy Delete, deleting a claim (or a namespace) deletes the disk and its data at once.",
    severity=Severity.MEDIUM,
    remediation="Set reclaimPolicy Retain for hardened tiers.",
)
def storage_class_retains(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if stack_context().hardened and args.props.get("reclaimPolicy", "Delete") != "Retain":
        yield f"reclaimPolicy is {args.props.get('reclaimPolicy', 'Delete (default)')}"


HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


@resource_rule(
    "MLS-K8S-003",
    types=[HELM_RELEASE],
    title="Helm releases pin a chart version from a named repository",
    why="An unpinned chart upgrades on the next deployment after upstream publishes; every controller the "
    "platform installs (Karpenter, device plugin) must change only through a reviewed version bump.",
    severity=Severity.MEDIUM,
    remediation="Set version to an exact chart version and repository_opts.repo to the chart repository.",
)
def helm_release_pinned(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    version = str(args.props.get("version") or "")
    if not version or any(c in version for c in "^~*x><") or version == "latest":
        yield f"chart {args.props.get('chart')} version is {version or 'unset'}, not an exact version"
    if not (args.props.get("repositoryOpts") or {}).get("repo"):
        yield f"chart {args.props.get('chart')} has no repositoryOpts.repo"


# ---------------------------------------------------------------------------------------------------------
# Workloads: every Kubernetes object that carries a pod template.

POD_TEMPLATE_TYPES = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:apps/v1:ReplicaSet",
    "kubernetes:batch/v1:Job",
    "kubernetes:batch/v1:CronJob",
    "kubernetes:core/v1:Pod",
)
SERVICE = "kubernetes:core/v1:Service"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
GPU = "nvidia.com/gpu"
INTERNAL_LB_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
}


def pod_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod spec inside a workload's inputs (Pod, templated controllers, CronJob's job template)."""
    spec = props.get("spec") or {}
    if props.get("kind") == "Pod":
        return spec
    if props.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template") or {}
    return template.get("spec") or {}


def containers(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = pod_spec(props)
    return [
        c
        for c in [*as_list(spec.get("initContainers")), *as_list(spec.get("containers"))]
        if isinstance(c, Mapping)
    ]


def _image_host(image: str) -> str:
    first = image.split("/", 1)[0]
    # A first segment without a dot or port is a Docker Hub namespace ("library/nginx"), not a host.
    return first if "/" in image and ("." in first or ":" in first or first == "localhost") else "docker.io"


@resource_rule(
    "MLS-K8S-010",
    types=POD_TEMPLATE_TYPES,
    title="Images come only from the platform's registry",
    why="The account's ECR (with its pull-through cache for public images) is scanned, encrypted and reachable "
    "through the VPC endpoints; images from elsewhere bypass scanning and can change under the platform.",
    severity=Severity.HIGH,
    controls={"cis-eks": ["5.1.4"]},
    mlstack_only=True,
    remediation="Push the image to the environment's ECR, or pull public images through the cache prefix "
    "(<account>.dkr.ecr.<region>.amazonaws.com/ecr-public/...).",
    config={
        "extraRegistries": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Registry hosts allowed besides the environment's own ECR.",
        }
    },
)
def images_from_platform_registry(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    context = stack_context()
    allowed = {
        f"{context.account_id}.dkr.ecr.{context.region}.amazonaws.com",
        *config.get("extraRegistries", []),
    }
    for container in containers(args.props):
        image = str(container.get("image") or "")
        if _image_host(image) not in allowed:
            yield f"container {container.get('name')} pulls {image!r} from outside {sorted(allowed)}"


@resource_rule(
    "MLS-K8S-011",
    types=POD_TEMPLATE_TYPES,
    title="Images are pinned, never :latest",
    why="An untagged or :latest image changes with every push; a rollback or a new node then runs code nobody "
    "deployed.",
    severity=Severity.HIGH,
    remediation="Reference an immutable tag (ECR tags are immutable) or a digest (@sha256:...).",
)
def images_pinned(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    for container in containers(args.props):
        image = str(container.get("image") or "")
        if "@sha256:" in image:
            continue
        name = image.rsplit("/", 1)[-1]
        tag = name.split(":", 1)[1] if ":" in name else ""
        if not tag or tag == "latest":
            yield f"container {container.get('name')} image {image!r} is not pinned to a tag or digest"


def _security(pod: Mapping[str, Any], container: Mapping[str, Any], key: str) -> Any:
    own = (container.get("securityContext") or {}).get(key)
    return own if own is not None else (pod.get("securityContext") or {}).get(key)


@resource_rule(
    "MLS-K8S-012",
    types=POD_TEMPLATE_TYPES,
    title="Containers run as non-root",
    why="A root process that escapes its container is root on a node shared with other teams' GPUs and data.",
    severity=Severity.HIGH,
    remediation="Set securityContext.runAsNonRoot true and a non-zero runAsUser (pod or container level).",
)
def runs_as_non_root(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_spec(args.props)
    for container in containers(args.props):
        user = _security(pod, container, "runAsUser")
        if _security(pod, container, "runAsNonRoot") is not True or (user is not None and float(user) == 0):
            yield f"container {container.get('name')} may run as root"


@resource_rule(
    "MLS-K8S-013",
    types=POD_TEMPLATE_TYPES,
    title="No privileged containers or privilege escalation",
    why="A privileged container owns the node: its devices, its kubelet credentials and every pod on it.",
    severity=Severity.CRITICAL,
    controls={"cis-eks": ["4.2.1", "4.2.5"]},
    remediation="Remove privileged and set allowPrivilegeEscalation false; GPUs need neither (the device "
    "plugin mounts them).",
)
def not_privileged(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    for container in containers(args.props):
        context = container.get("securityContext") or {}
        if context.get("privileged") is True:
            yield f"container {container.get('name')} is privileged"
        if context.get("allowPrivilegeEscalation") is not False:
            yield f"container {container.get('name')} does not set allowPrivilegeEscalation false"


@resource_rule(
    "MLS-K8S-014",
    types=POD_TEMPLATE_TYPES,
    title="Pods do not share the node's namespaces",
    why="hostNetwork, hostPID and hostIPC let a pod see and reach the node's processes and traffic, across the "
    "tenant boundary.",
    severity=Severity.CRITICAL,
    controls={"cis-eks": ["4.2.2", "4.2.3", "4.2.4"]},
    remediation="Remove hostNetwork, hostPID and hostIPC from the pod spec.",
)
def no_host_namespaces(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_spec(args.props)
    shared = [key for key in ("hostNetwork", "hostPID", "hostIPC") if pod.get(key) is True]
    if shared:
        yield f"the pod shares the node's {shared}"


@resource_rule(
    "MLS-K8S-015",
    types=POD_TEMPLATE_TYPES,
    title="Containers request CPU and memory and limit memory",
    why="Requests drive scheduling, quotas and Karpenter's node sizing; a memory limit keeps one container from "
    "evicting its neighbours. CPU limits are left out on purpose: they throttle without protecting anyone.",
    severity=Severity.MEDIUM,
    remediation="Set resources.requests.cpu, resources.requests.memory and resources.limits.memory.",
)
def requests_and_limits(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    for container in containers(args.props):
        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        missing = [f"requests.{k}" for k in ("cpu", "memory") if not requests.get(k)]
        missing += [] if limits.get("memory") else ["limits.memory"]
        if missing:
            yield f"container {container.get('name')} lacks {missing}"


def _gpus(container: Mapping[str, Any], kind: str) -> Any:
    return ((container.get("resources") or {}).get(kind) or {}).get(GPU)


@resource_rule(
    "MLS-K8S-016",
    types=POD_TEMPLATE_TYPES,
    title="GPU pods tolerate the GPU taint and ask for whole GPUs",
    why="Without the toleration a GPU pod never schedules on the tainted pools; a fractional or unequal GPU "
    "request is rejected by the device plugin or silently over-commits a card.",
    severity=Severity.HIGH,
    remediation="Add the toleration {key: nvidia.com/gpu, effect: NoSchedule} and set equal integer "
    "nvidia.com/gpu requests and limits.",
)
def gpu_pods_fit_gpu_pools(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_spec(args.props)
    gpu_containers = [c for c in containers(args.props) if _gpus(c, "limits") or _gpus(c, "requests")]
    if not gpu_containers:
        return
    tolerations = [t for t in as_list(pod.get("tolerations")) if isinstance(t, Mapping)]
    tolerated = any(
        t.get("key") == GPU and t.get("effect") in (None, "", "NoSchedule") for t in tolerations
    ) or any(t.get("operator") == "Exists" and not t.get("key") for t in tolerations)
    if not tolerated:
        yield "the pod requests GPUs but does not tolerate the nvidia.com/gpu taint"
    for container in gpu_containers:
        request, limit = _gpus(container, "requests"), _gpus(container, "limits")
        try:
            whole = all(
                value is not None and float(value) == int(float(value)) >= 1 for value in (request, limit)
            )
        except ValueError:
            whole = False
        if not whole or float(request) != float(limit):
            yield f"container {container.get('name')} asks for GPUs {request}/{limit} (request/limit), not equal whole GPUs"


@resource_rule(
    "MLS-K8S-017",
    types=[SERVICE, INGRESS],
    title="No internet-facing load balancers",
    why="Endpoints are served inside the VPC; a public LoadBalancer Service or internet-facing ALB exposes a "
    "model API, and its GPU bill, to anyone.",
    severity=Severity.CRITICAL,
    remediation="Use ClusterIP behind the internal ingress, or annotate the Service "
    "service.beta.kubernetes.io/aws-load-balancer-scheme: internal (ALB: alb.ingress.kubernetes.io/scheme: internal).",
)
def no_public_load_balancers(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    annotations = (args.props.get("metadata") or {}).get("annotations") or {}
    if args.resource_type == INGRESS:
        if annotations.get("alb.ingress.kubernetes.io/scheme", "internal") != "internal":
            yield f"the ingress is {annotations.get('alb.ingress.kubernetes.io/scheme')}"
        return
    if (args.props.get("spec") or {}).get("type") != "LoadBalancer":
        return
    if not any(annotations.get(key) == value for key, value in INTERNAL_LB_ANNOTATIONS.items()):
        yield "the LoadBalancer Service is not annotated internal"


NAMESPACE = "kubernetes:core/v1:Namespace"
RESOURCE_QUOTA = "kubernetes:core/v1:ResourceQuota"
TEAM_LABEL = "mlstack.io/team"
QUOTA_KEYS = ("requests.cpu", "requests.memory", "requests.nvidia.com/gpu")


@stack_rule(
    "MLS-K8S-020",
    subjects=[NAMESPACE, RESOURCE_QUOTA],
    title="Every team namespace has a quota on CPU, memory and GPUs",
    why="Without a quota one team's burst takes every GPU the pools may buy; the quota is the team's share, "
    "the pool limit only the environment's ceiling.",
    severity=Severity.HIGH,
    mlstack_only=True,
    remediation="Give every team namespace a ResourceQuota with requests.cpu, requests.memory and "
    "requests.nvidia.com/gpu (teams[].gpu_quota).",
)
def team_namespace_quota(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    quotas = resources_of(args, RESOURCE_QUOTA)
    for namespace in resources_of(args, NAMESPACE):
        metadata = namespace.props.get("metadata") or {}
        if TEAM_LABEL not in (metadata.get("labels") or {}):
            continue
        name = metadata.get("name")
        hard: dict[str, Any] = {}
        for quota in quotas:
            if (quota.props.get("metadata") or {}).get("namespace") == name:
                hard.update((quota.props.get("spec") or {}).get("hard") or {})
        missing = [key for key in QUOTA_KEYS if key not in hard]
        if missing:
            yield f"team namespace {name} has no quota on {missing}", namespace.urn


NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
PSA_LEVELS = ("privileged", "baseline", "restricted")
DEFAULT_TEAM_PSA = {"dev": "baseline", "staging": "baseline", "prod": "baseline"}


def _team_namespaces(args: StackValidationArgs) -> list[tuple[str, Any]]:
    found = []
    for namespace in resources_of(args, NAMESPACE):
        metadata = namespace.props.get("metadata") or {}
        if TEAM_LABEL in (metadata.get("labels") or {}):
            found.append((str(metadata.get("name")), namespace))
    return found


def _is_default_deny(spec: Mapping[str, Any]) -> bool:
    types = set(as_list(spec.get("policyTypes")))
    return (
        not (spec.get("podSelector") or {})
        and {"Ingress", "Egress"} <= types
        and not as_list(spec.get("ingress"))
        and not as_list(spec.get("egress"))
    )


def _opens_everything(spec: Mapping[str, Any]) -> list[str]:
    """The directions in which a policy's rule admits every peer on every port (which undoes default-deny)."""
    opened = []
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for rule in as_list(spec.get(direction)):
            if not isinstance(rule, Mapping):
                continue
            if not as_list(rule.get(peers)) and not as_list(rule.get("ports")):
                opened.append(f"{direction} from/to any peer on any port")
            anywhere = [
                p
                for p in as_list(rule.get(peers))
                if ((p or {}).get("ipBlock") or {}).get("cidr") in ("0.0.0.0/0", "::/0")
            ]
            if direction == "ingress" and anywhere:
                opened.append("ingress from 0.0.0.0/0")
    return opened


@stack_rule(
    "MLS-K8S-021",
    subjects=[NAMESPACE, NETWORK_POLICY],
    title="Every team namespace keeps its default-deny NetworkPolicy, unweakened",
    why="Tenancy between teams rests on default-deny: without it, or with a policy that admits every peer, "
    "one team's pods reach another's notebooks, model servers and databases.",
    severity=Severity.HIGH,
    remediation="Keep the default-deny policy of components/teams.py (podSelector {}, policyTypes Ingress and "
    "Egress, no rules) and allow traffic only to named peers and ports.",
    controls={"cis-eks": ["4.3.2", "5.4.4"]},
    mlstack_only=True,
)
def team_default_deny(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    policies = resources_of(args, NETWORK_POLICY)
    for name, namespace in _team_namespaces(args):
        own = [p for p in policies if (p.props.get("metadata") or {}).get("namespace") == name]
        if not any(_is_default_deny(p.props.get("spec") or {}) for p in own):
            yield f"team namespace {name} has no default-deny NetworkPolicy", namespace.urn
        for policy in own:
            for opened in _opens_everything(policy.props.get("spec") or {}):
                yield f"NetworkPolicy {policy.name} in team namespace {name} allows {opened}", policy.urn


@resource_rule(
    "MLS-K8S-022",
    types=[NAMESPACE],
    title="Namespaces enforce a Pod Security Standard; team namespaces at least the tier's level",
    why="Pod Security Admission is what keeps privileged pods, host namespaces and host paths out of a "
    "namespace at admission, whatever created the pod (a chart, a notebook, kubectl); the workload rules "
    "only see the pods the platform declares.",
    severity=Severity.HIGH,
    remediation="Label the namespace pod-security.kubernetes.io/enforce baseline or restricted (team "
    "namespaces: at least teamMinimumLevel for the tier).",
    controls={"cis-eks": ["4.2.1", "4.2.2", "4.2.3", "4.2.4"]},
    config={
        "teamMinimumLevel": {
            "type": "object",
            "additionalProperties": {"type": "string", "enum": list(PSA_LEVELS)},
            "default": DEFAULT_TEAM_PSA,
            "description": "Lowest Pod Security Standard a team namespace may enforce, per tier.",
        }
    },
)
def namespace_pod_security(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    labels = (args.props.get("metadata") or {}).get("labels") or {}
    level = labels.get(PSA_ENFORCE)
    if level not in PSA_LEVELS or level == "privileged":
        yield f"{PSA_ENFORCE} is {level or 'unset (privileged)'}"
        return
    if TEAM_LABEL in labels:
        tier = str(stack_context().tier)
        minimum = str((config.get("teamMinimumLevel") or {}).get(tier, "baseline"))
        if minimum in PSA_LEVELS and PSA_LEVELS.index(level) < PSA_LEVELS.index(minimum):
            yield f"team namespace enforces {level}, below the {tier} minimum {minimum}"


def _gpu_quantity(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


@stack_rule(
    "MLS-K8S-023",
    subjects=[RESOURCE_QUOTA, "kubernetes:karpenter.sh/v1:NodePool"],
    title="No team's GPU quota exceeds what the GPU pools can supply",
    why="A quota is a team's promise of GPUs: one above the pools' combined limit can never be met and hides "
    "that the pools, not the quota, decide who waits.",
    severity=Severity.MEDIUM,
    remediation="Lower teams[].gpu_quota (plus its borrowing limit), or raise gpu_pools[].max_gpus.",
    mlstack_only=True,
)
def team_gpu_quota_fits_pools(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    from policies.gpu import NODE_POOL, gpu_limit, is_gpu_pool

    capacity = sum(gpu_limit(p.props) or 0 for p in resources_of(args, NODE_POOL) if is_gpu_pool(p.props))
    teams = {name for name, _ in _team_namespaces(args)}
    for quota in resources_of(args, RESOURCE_QUOTA):
        namespace = (quota.props.get("metadata") or {}).get("namespace")
        hard = (quota.props.get("spec") or {}).get("hard") or {}
        gpus = _gpu_quantity(hard.get(f"requests.{GPU}"))
        if namespace in teams and gpus > capacity:
            yield (
                f"team {namespace} may request {gpus:g} GPUs; the GPU pools hold at most {capacity:g}",
                quota.urn,
            )


RBAC_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"


@resource_rule(
    "MLS-K8S-024",
    types=[RBAC_ROLE, CLUSTER_ROLE],
    title="RBAC roles name their verbs, resources and API groups",
    why="A '*' in a role grants whatever the API server learns later (new CRDs, subresources such as "
    "pods/exec), and escalate, bind or impersonate lets the holder grant itself more.",
    severity=Severity.HIGH,
    remediation="List the exact apiGroups, resources and verbs the subject needs; never escalate, bind or "
    "impersonate.",
    controls={"cis-eks": ["4.1.3", "4.1.8"]},
)
def rbac_without_wildcards(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    for index, rule in enumerate(as_list(args.props.get("rules"))):
        if not isinstance(rule, Mapping):
            continue
        for key in ("apiGroups", "resources", "verbs"):
            if "*" in as_list(rule.get(key)):
                yield f"rule #{index} has '*' in {key}"
        risky = sorted({"escalate", "bind", "impersonate"} & {str(v) for v in as_list(rule.get("verbs"))})
        if risky:
            yield f"rule #{index} grants {risky}"
