"""Run the examples the way a user does, offline: flows locally on a local datastore, and their Argo Workflows
templates rendered with a team's generated Metaflow config, then deployed into the plan's deploy simulation.

- **Local runs** (:func:`run_locally`): ``python flow.py run`` with ``METAFLOW_DEFAULT_DATASTORE=local``,
  ``METAFLOW_DEFAULT_METADATA=local`` and a temporary ``METAFLOW_HOME`` and datastore root. A step decorated
  with ``@kubernetes`` always runs on the cluster (metaflow 2.19.39 plugins/kubernetes/kubernetes_decorator.py
  ``runtime_step_cli`` turns the step into ``kubernetes step``), so the run uses a copy of the flow file with
  exactly those decorator lines removed: every other line, the step code included, is the file the guides show.
- **Rendering** (:func:`render_workflow_template`): ``python flow.py argo-workflows create --only-json``, which
  skips the metadata service and the cluster (plugins/argo/argo_workflows_cli.py ``create``: "When only
  generating JSON, we skip cluster access operations") but still uploads the code package to the team's S3
  datastore; that upload goes to moto's in-process S3, so nothing leaves the machine.
- **Deployment** (:func:`workflow_pods`, :func:`plan_with`): the pods the Argo controller would create for each
  template, after Kueue admitted them, added to a copy of the stack's plan with the WorkflowTemplate itself.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import yaml

from mlstack.plan.recorder import Plan, RecordedResource
from mlstack.simulate import quantity
from mlstack.simulate.helm import charts_directory
from mlstack.simulate.objects import of_kind
from tests.plans import ROOT

EXAMPLES = ROOT / "examples"
FLOWS = EXAMPLES / "flows"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
WORKFLOW_TEMPLATE_TYPE = "kubernetes:argoproj.io/v1alpha1:WorkflowTemplate"
POD_TYPE = "kubernetes:core/v1:Pod"
JOBSET_TYPE = "kubernetes:jobset.x-k8s.io/v1alpha2:JobSet"

# Runs the flow file given as argv[1] with argv[3:] inside moto's S3 mock, with the team's artifacts bucket
# (argv[2]) in it: the code package `argo-workflows create` uploads lands there.
_RENDER = """
import runpy, sys
import boto3, moto
flow, bucket = sys.argv[1], sys.argv[2]
with moto.mock_aws():
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=bucket)
    sys.argv = [flow, *sys.argv[3:]]
    try:
        runpy.run_path(flow, run_name="__main__")
    except SystemExit as done:
        if done.code:
            raise
"""


def _base_env(home: Path, config: dict[str, str]) -> dict[str, str]:
    """The environment of a Metaflow command: nothing of the caller's Metaflow, AWS or Kubernetes settings."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.json").write_text(json.dumps(config))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("METAFLOW_", "AWS_", "KUBE", "MF_")) and k not in ("USER", "USERNAME")
    }
    env.update(
        METAFLOW_HOME=str(home),
        USERNAME="tester",
        # A kubeconfig that points nowhere: nothing here may reach a cluster.
        KUBECONFIG=str(home / "no-kubeconfig"),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def without_kubernetes(flow: Path, into: Path) -> Path:
    """A copy of ``flow`` in ``into`` without its ``@kubernetes(...)`` decorator lines (found with ast)."""
    source = flow.read_text()
    drop: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(target, ast.Name) and target.id == "kubernetes":
                    drop.update(range(decorator.lineno, (decorator.end_lineno or decorator.lineno) + 1))
    assert drop, f"{flow.name} has no @kubernetes step"
    lines = source.splitlines(keepends=True)
    into.mkdir(parents=True, exist_ok=True)
    copied = into / flow.name
    copied.write_text("".join(line for number, line in enumerate(lines, 1) if number not in drop))
    return copied


def run_locally(flow: Path, tmp: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """``python flow.py run ARGS`` on a local datastore and local metadata under ``tmp``."""
    env = _base_env(tmp / "home", {})
    env.update(
        METAFLOW_DEFAULT_DATASTORE="local",
        METAFLOW_DEFAULT_METADATA="local",
        METAFLOW_DATASTORE_SYSROOT_LOCAL=str(tmp / "datastore"),
    )
    script = without_kubernetes(flow, tmp / "flow")
    return subprocess.run(
        [sys.executable, script.name, "--no-pylint", "run", *args],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def render_workflow_template(flow: Path, config: dict[str, str], tmp: Path) -> dict[str, Any]:
    """The WorkflowTemplate ``argo-workflows create`` would deploy for the team whose Metaflow config this is."""
    env = _base_env(tmp / "home", config)
    bucket = config["METAFLOW_DATASTORE_SYSROOT_S3"].removeprefix("s3://").split("/", 1)[0]
    done = subprocess.run(
        [sys.executable, "-c", _RENDER, flow.name, bucket, "--no-pylint", "argo-workflows", "create", "--only-json"],
        cwd=flow.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # Metaflow prints its progress on stderr and the JSON alone on stdout (echo_always(..., err=False)).
    template: dict[str, Any] = json.loads(done.stdout)
    return template


def jobset_crd() -> dict[str, Any]:
    """The JobSet CRD the packaged jobset chart installs (kubernetes-sigs/jobset chart 0.12.0, crds/)."""
    charts = charts_directory(ROOT)
    assert charts is not None, "no shared/charts folder (set MLSTACK_CHARTS_DIR)"
    with tarfile.open(charts / "jobset-0.12.0.tgz") as chart:
        member = chart.extractfile("jobset/crds/jobset.x-k8s.io_jobsets.yaml")
        assert member is not None
        crd: dict[str, Any] = yaml.safe_load(member)
    return crd


def argo_executor(plan: Plan) -> dict[str, Any]:
    """The executor settings of the plan's Argo release (the ``executor`` values of the chart), which the
    controller gives the ``init`` and ``wait`` containers of every workflow pod."""
    releases = [r for r in plan.resources if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs.get("name") == "argo-workflows"]
    assert len(releases) == 1
    values = releases[0].inputs["values"]
    executor: dict[str, Any] = values["executor"]
    registry = executor["image"]["registry"]
    return {
        # argo-helm argo-workflows-1.0.18 templates/controller/workflow-controller-deployment.yaml: --executor-image
        # "<registry>/<repository>:<tag>", repository argoproj/argoexec and tag the chart's appVersion v4.0.6.
        "image": f"{registry}/argoproj/argoexec:v4.0.6",
        "resources": executor.get("resources") or {},
        "securityContext": executor.get("securityContext") or {},
    }


def _executor_container(name: str, executor: dict[str, Any]) -> dict[str, Any]:
    # argoproj/argo-workflows@v4.0.6 workflow/controller/workflowpod.go newExecContainer: the executor image,
    # resources and security context from the controller's executor config, for `init` and `wait` alike.
    return {
        "name": name,
        "image": executor["image"],
        "resources": copy.deepcopy(executor["resources"]),
        "securityContext": copy.deepcopy(executor["securityContext"]),
    }


def _pod(
    name: str,
    namespace: str,
    metadata: dict[str, Any],
    spec: dict[str, Any],
    main: dict[str, Any],
    executor: dict[str, Any] | None,
) -> dict[str, Any]:
    pod_spec = copy.deepcopy(spec)
    containers = [{**copy.deepcopy(main), "name": "main"}] if executor else copy.deepcopy(spec["containers"])
    if executor is not None:
        # workflowpod.go createWorkflowPod: the `init` container first, the `wait` sidecar beside `main`.
        pod_spec["initContainers"] = [_executor_container("init", executor)]
        containers.append(_executor_container("wait", executor))
    pod_spec["containers"] = containers
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict((metadata or {}).get("labels") or {}),
            "annotations": dict((metadata or {}).get("annotations") or {}),
        },
        "spec": _no_empty(pod_spec),
    }


def _no_empty(spec: dict[str, Any]) -> dict[str, Any]:
    """Drop None and empty fields, as the API server's decoding leaves them unset."""
    return {k: v for k, v in spec.items() if v not in (None, {}, [])}


def _fill(manifest: str, parameters: dict[str, str]) -> str:
    """Argo's ``{{inputs.parameters.X}}`` substitution with representative values (the values exist only at
    run time: task ids, names)."""
    for key, value in parameters.items():
        manifest = manifest.replace("{{" + key + "}}", value)
    return manifest.replace("{{workflow.name}}", "run-1")


def workflow_pods(
    template: dict[str, Any], executor: dict[str, Any], num_parallel: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pods, JobSets) one run of the WorkflowTemplate creates: a pod per container template
    (argoproj/argo-workflows@v4.0.6 workflowpod.go: template metadata labels and annotations, nodeSelector,
    tolerations and serviceAccountName onto the pod) and, for a @parallel step, the JobSet of its resource
    template with ``num_parallel`` nodes (one control pod, the rest workers)."""
    namespace = template["metadata"]["namespace"]
    flow = template["metadata"]["name"]
    pods: list[dict[str, Any]] = []
    jobsets: list[dict[str, Any]] = []
    for item in template["spec"]["templates"]:
        if "container" in item:
            spec = {
                "serviceAccountName": item.get("serviceAccountName") or template["spec"].get("serviceAccountName"),
                "nodeSelector": item.get("nodeSelector"),
                "tolerations": item.get("tolerations"),
                "volumes": item.get("volumes"),
                "activeDeadlineSeconds": item.get("activeDeadlineSeconds"),
                "containers": [],
            }
            pods.append(
                _pod(f"{flow}-{item['name']}", namespace, item.get("metadata") or {}, spec, item["container"], executor)
            )
        elif "resource" in item and "JobSet" in item["resource"].get("manifest", ""):
            manifest = _fill(
                item["resource"]["manifest"],
                {
                    "inputs.parameters.jobset-name": f"{flow}-{item['name']}-1",
                    "inputs.parameters.num-parallel": str(num_parallel),
                    "=asInt(inputs.parameters.workerCount)": str(num_parallel - 1),
                    "inputs.parameters.task-id-entropy": "abc123",
                    "inputs.parameters.input-paths": "argo-run-1/start/1",
                    "inputs.parameters.split-index": "0",
                },
            )
            jobset = yaml.safe_load(manifest)
            jobset["metadata"]["namespace"] = namespace
            jobsets.append(jobset)
            for replicated in jobset["spec"]["replicatedJobs"]:
                job = replicated["template"]["spec"]
                pod_template = job["template"]
                for index in range(int(replicated["replicas"]) * int(job.get("parallelism", 1))):
                    pods.append(
                        _pod(
                            f"{jobset['metadata']['name']}-{replicated['name']}-{index}",
                            namespace,
                            pod_template.get("metadata") or {},
                            pod_template["spec"],
                            {},
                            None,
                        )
                    )
    return pods, jobsets


def kueue_admitted(pod: dict[str, Any], plan_objects: dict[str, list[Any]]) -> dict[str, Any]:
    """The pod as it starts after Kueue admitted it: the nodeLabels and tolerations of the flavors assigned to
    its resources go onto the pod (kubernetes-sigs/kueue@v0.19.2 pkg/podset/podset.go ``FromAssignment`` copies
    ``flv.Spec.NodeLabels`` and ``flv.Spec.Tolerations``; ``Merge`` applies them). For each resource group of
    the ClusterQueue that covers what the pod requests, the flavor is the first, in order, whose nominal quota
    holds the whole request (pkg/scheduler/flavorassigner tries a group's flavors in order). Resources no group
    covers are left alone here: MLS-SIM-ADM-005 reports them."""
    queue = (pod["metadata"].get("labels") or {}).get(KUEUE_QUEUE_LABEL)
    if not queue:
        return pod
    namespace = pod["metadata"]["namespace"]
    local = [q for q in plan_objects["LocalQueue"] if q.namespace == namespace and q.name == queue]
    assert local, f"pod {pod['metadata']['name']} names LocalQueue {queue}, which {namespace} does not have"
    cluster_queue_name = local[0].obj["spec"]["clusterQueue"]
    cluster_queue = next(q for q in plan_objects["ClusterQueue"] if q.name == cluster_queue_name)
    flavors = {f.name: f.obj.get("spec") or {} for f in plan_objects["ResourceFlavor"]}
    wanted: quantity.Resources = {}
    for container in pod["spec"]["containers"]:
        resources = container.get("resources") or {}
        # A request defaults to the limit when only the limit is set (kubernetes.io/docs/concepts/configuration/
        # manage-resources-containers); Metaflow sets GPUs as limits only.
        both = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        wanted = quantity.add(wanted, quantity.resource_list(both))
    admitted = copy.deepcopy(pod)
    for group in cluster_queue.obj["spec"]["resourceGroups"]:
        needed = {name: amount for name, amount in wanted.items() if name in group["coveredResources"]}
        if not needed:
            continue
        chosen = next(
            (
                flavor["name"]
                for flavor in group["flavors"]
                if all(
                    any(q["name"] == name and quantity.parse(q["nominalQuota"]) >= amount for q in flavor["resources"])
                    for name, amount in needed.items()
                )
            ),
            None,
        )
        assert chosen, f"no flavor of {cluster_queue_name} holds {needed}"
        spec = flavors[chosen]
        admitted["spec"].setdefault("nodeSelector", {}).update(spec.get("nodeLabels") or {})
        tolerations = admitted["spec"].setdefault("tolerations", [])
        tolerations.extend(t for t in spec.get("tolerations") or [] if t not in tolerations)
    return admitted


def plan_with(plan: Plan, objects: list[dict[str, Any]]) -> Plan:
    """A copy of ``plan`` that also creates ``objects`` (in wire format, as the recorder stores inputs)."""
    extended = copy.deepcopy(plan)
    for obj in objects:
        group_version = obj["apiVersion"] if "/" in obj["apiVersion"] else f"core/{obj['apiVersion']}"
        type_ = f"kubernetes:{group_version}:{obj['kind']}"
        name = f"{obj['metadata']['namespace']}-{obj['metadata']['name']}"
        extended.resources.append(
            RecordedResource(
                urn=f"urn:pulumi:{plan.stack}::mlstack::{type_}::{name}",
                type=type_,
                name=name,
                parent="",
                custom=True,
                id="",
                inputs=_wire(obj),
                dependencies=[],
                property_dependencies={},
                protect=False,
                retain_on_delete=False,
                delete_before_replace=False,
                ignore_changes=[],
                aliases=[],
                provider="",
            )
        )
    return extended


def _wire(value: Any) -> Any:
    """Numbers as floats, as the Pulumi wire format carries them (the recorder's inputs)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def queue_objects(world: Any) -> dict[str, list[Any]]:
    """The plan's Kueue objects by kind, as the simulation sees them."""
    return {kind: of_kind(world, kind) for kind in ("LocalQueue", "ClusterQueue", "ResourceFlavor")}
