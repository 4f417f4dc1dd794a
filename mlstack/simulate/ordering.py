"""Install ordering: custom resources wait for their CRD, webhooks are up before the objects they admit.

Pulumi creates resources in parallel unless one depends on another, so "B waits for A" means A is reachable
from B through the plan's ``dependencies``, transitively. A dependency on a component resource stands for its
descendants, as the Python SDK expands it (pulumi 3.272.0 ``sdk/python/lib/pulumi/runtime/rpc.py``,
``_add_dependency``: a local component's custom descendants, not the children of a custom resource). A Helm
release is one resource: every object it renders is created when the release installs, and the release is
done when Helm is.

Modelled failures:

- **CRDs** (``MLS-SIM-ORDER-001``). Helm builds every object of a release against the API server's REST
  mapping before it creates any (helm/helm@v3.20.2, the Helm library pulumi/pulumi-kubernetes@9497796 provider/go.mod pins:
  ``pkg/action/install.go:333``, ``KubeClient.Build`` of the whole manifest), so a release holding a custom
  resource whose CRD is not yet served fails at once; only CRDs in a chart's ``crds/`` folder are created
  first (``install.go:259-267``). Our own custom resources need their CRD's installer to be done as well.
- **Webhooks** (``MLS-SIM-ORDER-002``). A Mutating/ValidatingWebhookConfiguration with failurePolicy Fail
  (the v1 default) refuses every matching request while its service has no ready endpoint, which is the
  case from the moment Helm creates it until the release's pods are up. An object created in parallel with
  that release is refused. Within one release, Helm creates kinds in its install order and unknown kinds
  (webhook configurations, custom kinds) last, alphabetically (``pkg/releaseutil/kind_sorter.go``), so only
  a custom kind sorting after the configuration's kind meets its own release's webhook.

Not modelled: pods that controllers create later (a refused pod is retried by its controller), webhook
``matchConditions`` (CEL; a webhook with them is assumed to match, and the finding says so), and what a
webhook would answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import Severity

from mlstack.simulate.crds import CrdSource, crd_sources, group_of, version_of
from mlstack.simulate.framework import SimResult, World, derived, sim_check
from mlstack.simulate.helm import BUILTIN_CLUSTER_SCOPED_KINDS, KubeObject
from mlstack.simulate.objects import all_objects, crd_scopes, label_selector_matches
from mlstack.simulate.schema import is_builtin

WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
HOOK_ANNOTATION = "helm.sh/hook"
# Helm's install order by kind (helm/helm@v3.20.2:pkg/releaseutil/kind_sorter.go, InstallOrder); kinds not in
# it are created after all of these, sorted by name.
HELM_INSTALL_ORDER = (
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
    "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList",
    "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList",
    "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
)  # fmt: skip
# Namespaces every cluster has (the API server creates them; kube-node-lease and kube-public by the
# controller manager), so objects in them need nothing from the plan.
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# The label the API server sets on every namespace (Kubernetes >= 1.22, NamespaceDefaultLabelName).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# Resource names of built-in kinds whose plural is not kind.lower() + "s" (the API's REST names).
_IRREGULAR_PLURALS = {
    "Endpoints": "endpoints",
    "Ingress": "ingresses",
    "IngressClass": "ingressclasses",
    "NetworkPolicy": "networkpolicies",
    "PodSecurityPolicy": "podsecuritypolicies",
    "PriorityClass": "priorityclasses",
    "RuntimeClass": "runtimeclasses",
    "StorageClass": "storageclasses",
    "DeviceClass": "deviceclasses",
    "VolumeAttributesClass": "volumeattributesclasses",
}


# ---------------------------------------------------------------------------------------------------------
# The plan's dependency graph.


@derived
def _children(world: World) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {}
    for resource in world.plan.resources:
        if resource.parent:
            children.setdefault(resource.parent, []).append(resource.urn)
    return children


def _expanded(world: World, urn: str) -> list[str]:
    """A dependency as the SDK records it: a component stands for its custom descendants that are not children
    of a custom resource (pulumi 3.272.0 ``runtime/rpc.py`` ``_add_dependency``)."""
    resource = world.by_urn().get(urn)
    if resource is None or resource.custom:
        return [urn]
    found, pending = [], list(_children(world).get(urn, []))
    while pending:
        child = world.by_urn().get(pending.pop(0))
        if child is None:
            continue
        if child.custom:
            found.append(child.urn)
        else:
            pending.extend(_children(world).get(child.urn, []))
    return found


@derived
def waits_for(world: World) -> dict[str, frozenset[str]]:
    """URN -> every URN it transitively waits for (custom resources only), computed once per plan."""
    direct: dict[str, set[str]] = {}
    for resource in world.plan.resources:
        deps: set[str] = set()
        for dependency in resource.dependencies:
            deps.update(_expanded(world, dependency))
        deps.discard(resource.urn)
        direct[resource.urn] = deps
    closure: dict[str, frozenset[str]] = {}

    def visit(urn: str, path: set[str]) -> frozenset[str]:
        if urn in closure:
            return closure[urn]
        if urn in path:  # a cycle: the engine refuses it elsewhere; stop here
            return frozenset()
        path.add(urn)
        reached: set[str] = set()
        for dependency in direct.get(urn, ()):
            reached.add(dependency)
            reached |= visit(dependency, path)
        path.discard(urn)
        closure[urn] = frozenset(reached)
        return closure[urn]

    for resource in world.plan.resources:
        visit(resource.urn, set())
    return closure


def waits(world: World, urn: str, on: str) -> bool:
    """Whether the resource ``urn`` is created only after ``on`` is done."""
    return on in waits_for(world).get(urn, frozenset())


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


# ---------------------------------------------------------------------------------------------------------
# CRDs before their custom resources.


def _is_hook(item: KubeObject, *phases: str) -> bool:
    """Whether a chart object is a Helm hook of one of ``phases`` (any phase when none are given)."""
    hooks = str(((item.obj.get("metadata") or {}).get("annotations") or {}).get(HOOK_ANNOTATION, ""))
    declared = {h.strip() for h in hooks.split(",") if h.strip()}
    return bool(declared) if not phases else bool(declared & set(phases))


@dataclass(frozen=True)
class _Need:
    """Custom objects of one kind that one plan resource creates."""

    urn: str
    api_version: str
    kind: str
    labels: tuple[str, ...]


def _needs(world: World) -> Iterator[tuple[_Need, list[KubeObject]]]:
    """Custom objects grouped by the resource creating them and their kind: kinds some CRD defines, and kinds
    that are not built into the cluster's Kubernetes version (whose CRD nothing at all provides)."""
    grouped: dict[tuple[str, str, str], list[KubeObject]] = {}
    sources = crd_sources(world)
    version = str(getattr(world.spec.cluster, "kubernetes_version", ""))
    for item in all_objects(world):
        known = (group_of(item.api_version), item.kind) in sources
        if known or is_builtin(version, item.api_version, item.kind) is False:
            grouped.setdefault((item.urn, item.api_version, item.kind), []).append(item)
    for (urn, api_version, kind), items in grouped.items():
        yield _Need(urn, api_version, kind, tuple(i.label for i in items)), items


def _installers(world: World, api_version: str, kind: str) -> list[CrdSource]:
    """The plan's CRDs for a kind (charts' and ours), serving its version first."""
    sources = [s for s in crd_sources(world).get((group_of(api_version), kind), []) if s.in_plan]
    serving = [s for s in sources if version_of(api_version) in s.served_versions()]
    return serving or sources


@sim_check(
    "MLS-SIM-ORDER-001",
    title="Custom resources wait for whatever installs their CRD",
    why=(
        "Pulumi creates resources in parallel unless one depends on another. A release (or our custom "
        "resource) created before the CRD of its kind is served fails: Helm builds every object of a release "
        "against the API server's mappings before creating any, so the install stops with 'no matches for "
        "kind ... ensure CRDs are installed first'; a kind whose CRD nothing installs never deploys"
    ),
    severity=Severity.HIGH,
    remediation=(
        "Make the resource depend on the release (or CRD resource) that installs the CRD "
        "(ResourceOptions(depends_on=[...])); inside one chart, ship the CRD in the chart's crds/ folder or in "
        "a separate CRD release; install a kind's CRD from the plan when only shared/crds has it"
    ),
    subjects=("apiextensions.k8s.io/v1:CustomResourceDefinition", "kubernetes:helm.sh/v3:Release"),
)
def custom_resources_wait_for_their_crd(world: World) -> SimResult:
    for need, items in _needs(world):
        kind = f"{group_of(need.api_version)}/{need.kind}"
        names = ", ".join(need.labels[:3]) + (
            f" and {len(need.labels) - 3} more" if len(need.labels) > 3 else ""
        )
        installers = _installers(world, need.api_version, need.kind)
        if not installers:
            yield (
                f"{names}: nothing in the plan installs the CRD for {kind} (a release rendering it or a "
                "CustomResourceDefinition resource), and it is not a built-in kind: the cluster does not serve it",
                need.urn,
            )
            continue
        own = [s for s in installers if s.urn == need.urn]
        if own:
            if any(s.pre_installed_by_helm for s in own):
                continue
            late = [i.label for i in items if not _is_hook(i, "post-install", "post-upgrade")]
            if late:
                yield (
                    f"{', '.join(late[:3])}: its own release renders the CRD for {kind} as a template "
                    f"({own[0].template}), and Helm builds the whole manifest before creating any object, so a "
                    "first install fails: move the CRD to the chart's crds/ folder or a separate release",
                    need.urn,
                )
            continue
        if any(waits(world, need.urn, s.urn) for s in installers):
            continue
        where = "; ".join(sorted({s.describe() for s in installers}))
        yield (
            f"{names}: needs the CRD for {kind}, which {where} installs, but {_name(need.urn)} does not wait "
            f"for {' or '.join(sorted({_name(s.urn) for s in installers}))} (no dependency path in the plan): "
            "created in parallel, it fails with 'no matches for kind'",
            need.urn,
        )


# ---------------------------------------------------------------------------------------------------------
# Webhooks before the objects they admit.


def plural(world: World, item: KubeObject) -> str:
    """The REST resource name of an object's kind: its CRD's ``names.plural``, else the built-in one."""
    for source in crd_sources(world).get((group_of(item.api_version), item.kind), []):
        if source.plural:
            return source.plural
    kind = item.kind
    if kind in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[kind]
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    return lower + "s"


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector against labels (an absent or empty selector matches everything)."""
    return label_selector_matches(selector, labels)


@derived
def namespace_labels(world: World) -> dict[str, dict[str, str]]:
    """Namespace -> its labels, from the plan's and the charts' Namespace objects plus the name label."""
    labels: dict[str, dict[str, str]] = {}
    for item in all_objects(world):
        if item.kind == "Namespace" and item.name:
            own = {str(k): str(v) for k, v in ((item.obj.get("metadata") or {}).get("labels") or {}).items()}
            labels[item.name] = {**own, NAMESPACE_NAME_LABEL: item.name}
    return labels


def _labels_of_namespace(world: World, namespace: str) -> dict[str, str]:
    return namespace_labels(world).get(namespace) or {NAMESPACE_NAME_LABEL: namespace}


def _scope(world: World, item: KubeObject) -> str:
    if item.kind in BUILTIN_CLUSTER_SCOPED_KINDS or crd_scopes(world).get(item.kind) == "Cluster":
        return "Cluster"
    return "Namespaced"


def _rule_matches(world: World, rule: Mapping[str, Any], item: KubeObject) -> bool:
    def has(key: str, value: str) -> bool:
        return any(entry in ("*", value) for entry in rule.get(key) or [])

    resource = plural(world, item)
    return (
        has("operations", "CREATE")
        and has("apiGroups", group_of(item.api_version))
        and has("apiVersions", version_of(item.api_version))
        and any(entry in ("*", "*/*", resource) for entry in rule.get("resources") or [])
        and (rule.get("scope") or "*") in ("*", _scope(world, item))
    )


def webhook_matches(world: World, webhook: Mapping[str, Any], item: KubeObject) -> bool:
    """Whether one webhook of a configuration intercepts creating ``item`` (rules, namespace and object
    selectors, as the API server's admission plugin matches them; ``matchConditions`` not evaluated)."""
    if not any(_rule_matches(world, rule, item) for rule in webhook.get("rules") or []):
        return False
    labels = {str(k): str(v) for k, v in ((item.obj.get("metadata") or {}).get("labels") or {}).items()}
    if not selector_matches(webhook.get("objectSelector"), labels):
        return False
    if _scope(world, item) == "Cluster":
        # A Namespace is matched on its own labels; other cluster-scoped objects never skip the webhook.
        return item.kind != "Namespace" or selector_matches(webhook.get("namespaceSelector"), labels)
    return selector_matches(webhook.get("namespaceSelector"), _labels_of_namespace(world, item.namespace))


def _awaited(world: World, urn: str) -> bool:
    """Whether the resource is done only once its workloads are ready: a Release with ``skipAwait`` is done as
    soon as Helm has created its objects (pulumi-kubernetes Release ``skipAwait``), so its webhook may not
    answer yet."""
    resource = world.by_urn().get(urn)
    return resource is None or not resource.inputs.get("skipAwait")


def _fails_closed(webhook: Mapping[str, Any]) -> bool:
    # admissionregistration.k8s.io/v1 defaults failurePolicy to Fail.
    return (webhook.get("failurePolicy") or "Fail") == "Fail"


def _helm_creates_before(webhook_kind: str, kind: str) -> bool:
    """Whether Helm creates ``kind`` before ``webhook_kind`` within one release (kind_sorter.go)."""
    if kind in HELM_INSTALL_ORDER:
        return True
    return kind < webhook_kind


def _webhooks(world: World) -> Iterable[tuple[KubeObject, Mapping[str, Any]]]:
    for config in all_objects(world):
        if config.kind in WEBHOOK_KINDS and not _is_hook(config):
            for webhook in config.obj.get("webhooks") or []:
                if isinstance(webhook, Mapping) and _fails_closed(webhook):
                    yield config, webhook


@sim_check(
    "MLS-SIM-ORDER-002",
    title="Objects wait for the release whose fail-closed webhook admits them",
    why=(
        "A webhook with failurePolicy Fail refuses every request it matches until its service has a ready "
        "pod; an object created in parallel with the release that installs the webhook is refused ('failed "
        "calling webhook ... no endpoints available'), and the resource or release creating it fails"
    ),
    severity=Severity.HIGH,
    remediation=(
        "Make the resource (or the release rendering the object) depend on the release that installs the "
        "webhook, or narrow the webhook's namespaceSelector/objectSelector through that chart's values"
    ),
    subjects=WEBHOOK_KINDS,
)
def objects_wait_for_their_webhooks(world: World) -> SimResult:
    webhooks = list(_webhooks(world))
    if not webhooks:
        return
    for item in all_objects(world):
        if item.kind in WEBHOOK_KINDS:
            continue
        for config, webhook in webhooks:
            if item.urn == config.urn:
                if item.release and _helm_creates_before(config.kind, item.kind):
                    continue
                if not item.release:
                    continue
            elif (waits(world, item.urn, config.urn) and _awaited(world, config.urn)) or waits(
                world, config.urn, item.urn
            ):
                continue  # created after the webhook is up, or before the webhook exists
            if not webhook_matches(world, webhook, item):
                continue
            caveat = " (its matchConditions are not evaluated)" if webhook.get("matchConditions") else ""
            where = f"release {config.release}" if config.release else _name(config.urn)
            relation = (
                f"is created after the {config.kind} in the same release"
                if item.urn == config.urn
                else f"does not wait for {_name(config.urn)}"
            )
            yield (
                f"{item.label}: webhook {webhook.get('name')} of {config.kind} {config.name} ({where}) admits "
                f"it with failurePolicy Fail{caveat}, and {_name(item.urn)} {relation}: created while the "
                "webhook's service has no ready pod, it is refused",
                item.urn,
            )
            break
