"""The examples the guides show (examples/): run locally, rendered for Argo Workflows with a team's generated
Metaflow config, checked against the Argo and JobSet CRDs and deployed into dev's deploy simulation.

How each is run offline is described in tests/examples.py.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mlstack.check.engine import Violation
from mlstack.simulate.crds import CrdSource
from mlstack.simulate.objects import renders, shared_crds
from mlstack.simulate.schema import validate
from mlstack.spec.inference import ecr_registry_host
from tests.examples import (
    EXAMPLES,
    FLOWS,
    KUEUE_QUEUE_LABEL,
    argo_executor,
    jobset_crd,
    kueue_admitted,
    plan_with,
    queue_objects,
    render_workflow_template,
    run_locally,
    workflow_pods,
)
from tests.plans import PROJECT, plan_of
from tests.simulation import findings, world_of

TEAM = "search"  # dev's Qdrant writer team
FLOW_FILES = ("hello", "finetune", "rag_ingest")
NUM_PARALLEL = 2  # finetune.py's default --nodes


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def config() -> dict[str, str]:
    """The team's generated Metaflow config (stack output metaflow_config), as the guide installs it."""
    team_config: dict[str, str] = plan_of("dev").outputs["metaflow_config"][TEAM]
    return team_config


@pytest.fixture(scope="module")
def templates(config: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {
        name: render_workflow_template(FLOWS / f"{name}.py", config, tmp_path_factory.mktemp(name))
        for name in FLOW_FILES
    }


# -- Local runs --------------------------------------------------------------------------------------------


def test_hello_runs_locally(tmp_path: Path) -> None:
    done = run_locally(FLOWS / "hello.py", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "hello from the platform" in done.stdout + done.stderr
    assert "done" in done.stdout + done.stderr


def test_rag_ingest_upserts_into_qdrant(tmp_path: Path) -> None:
    from qdrant_client import QdrantClient

    rag = _module(FLOWS / "rag_ingest.py")
    chunk, hashing_embedding = rag.chunk, rag.hashing_embedding

    docs = tmp_path / "docs"
    (docs / "runbooks").mkdir(parents=True)
    (docs / "gpu.md").write_text("GPU pools scale to zero. " * 150)  # 750 words: 5 chunks of 200 with overlap 40
    (docs / "runbooks" / "kueue.txt").write_text("Kueue admits a workload whole against the team quota.")
    (docs / "image.png").write_bytes(b"\x89PNG")  # not a document
    store = tmp_path / "qdrant"
    done = run_locally(FLOWS / "rag_ingest.py", tmp_path, "--docs", str(docs), "--qdrant", str(store))
    assert done.returncode == 0, done.stderr[-3000:]

    expected = len(chunk("GPU pools scale to zero. " * 150, 200, 40)) + 1
    assert expected == 6
    client = QdrantClient(path=str(store))
    try:
        assert client.count("handbook", exact=True).count == expected
        hits = client.query_points("handbook", query=hashing_embedding("does kueue admit workloads"), limit=1)
        assert hits.points[0].payload is not None
        assert hits.points[0].payload["source"] == "runbooks/kueue.txt"
    finally:
        client.close()

    # Ingesting again overwrites the same points (ids derive from document and chunk), never duplicates.
    again = run_locally(FLOWS / "rag_ingest.py", tmp_path / "again", "--docs", str(docs), "--qdrant", str(store))
    assert again.returncode == 0, again.stderr[-3000:]
    client = QdrantClient(path=str(store))
    try:
        assert client.count("handbook", exact=True).count == expected
    finally:
        client.close()


def test_finetune_publishes_where_endpoints_read(config: dict[str, str], tmp_path: Path) -> None:
    from mlstack.spec.inference import EndpointSpec

    flow = _module(FLOWS / "finetune.py")
    location = flow.models_location(config["METAFLOW_DATASTORE_SYSROOT_S3"], "qwen-support", "1764500000")
    assert location == f"s3://dev-111122223333-us-east-1-models/{TEAM}/qwen-support/1764500000/"
    # The location is what an endpoint's `model:` accepts, and the team's prefix of the models bucket.
    dev_chat = next(e for e in PROJECT.load("dev")[1].inference.endpoints if e.name == "chat")
    endpoint = EndpointSpec.model_validate({**dev_chat.model_dump(), "model": location})
    assert endpoint.model_location.team == TEAM
    assert flow.MODEL_URI.match(location)
    with pytest.raises(ValueError, match="not a team's Metaflow root"):
        flow.models_location("s3://somewhere-else/metaflow", "m", "v")

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_text('{"text": "one"}\n\n{"text": "two"}\n')
    (data / "notes.md").write_text("not training data")
    assert flow.read_texts(str(data)) == ["one", "two"]
    with pytest.raises(ValueError, match="no JSON Lines"):
        flow.read_texts(str(tmp_path / "data" / "missing"))

    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "config.json").write_text("{}")
    (saved / "model.safetensors").write_bytes(b"\0")
    assert flow.publish(str(saved), str(tmp_path / "out")) == ["config.json", "model.safetensors"]
    assert (tmp_path / "out" / "config.json").read_text() == "{}"


# -- The endpoint client -----------------------------------------------------------------------------------


class _VllmLike(BaseHTTPRequestHandler):
    """The two routes of vLLM's OpenAI-compatible server the client uses: GET /v1/models and
    POST /v1/chat/completions (docs.vllm.ai serving/openai_compatible_server, "Supported APIs"), answering
    with the OpenAI response shapes. Records what it was asked."""

    seen: list[tuple[str, str, dict[str, Any]]] = []

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path, {}))
        if self.path != "/v1/models":
            self.send_error(404)
            return
        self._json({"object": "list", "data": [{"id": "llama-3-1-8b-instruct", "object": "model", "owned_by": "vllm"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(("POST", self.path, body))
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        if body["model"] != "llama-3-1-8b-instruct":
            self.send_error(404, "model not found")
            return
        self._json(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"echo: {body['messages'][-1]['content']}"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
            }
        )

    def _json(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_call_endpoint_speaks_vllms_openai_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a proxy of the test machine must not carry the local calls
    client = _module(EXAMPLES / "clients" / "call_endpoint.py")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _VllmLike)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    _VllmLike.seen = []
    try:
        # The model comes from /v1/models: dev's chat serves llama-3-1-8b-instruct, not "chat".
        assert client.ask(url, "Hello") == "echo: Hello"
        with pytest.raises(SystemExit, match="serves llama-3-1-8b-instruct, not chat"):
            client.ask(url, "Hello", model="chat")
    finally:
        server.shutdown()
        thread.join()
    method, path, body = _VllmLike.seen[1]
    assert (method, path) == ("POST", "/v1/chat/completions")
    assert body["messages"] == [{"role": "user", "content": "Hello"}]
    assert body["max_tokens"] == 64


def test_dev_chat_serves_the_model_segment_of_its_location() -> None:
    """The guide's model name: vLLM serves --served-model-name, the <model> segment of the location."""
    from components.inference import runtime_command

    chat = next(e for e in PROJECT.load("dev")[1].inference.endpoints if e.name == "chat")
    _, args = runtime_command(chat)
    assert args[args.index("--served-model-name") + 1] == "llama-3-1-8b-instruct"
    guide = (PROJECT.root / "docs" / "guides" / "call-an-endpoint.md").read_text()
    assert '"model": "llama-3-1-8b-instruct"' in guide


# -- Rendered for Argo Workflows ---------------------------------------------------------------------------


def _step_templates(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in template["spec"]["templates"] if "container" in t]


@pytest.mark.parametrize("name", FLOW_FILES)
def test_workflow_template_matches_the_argo_crd(templates: dict[str, dict[str, Any]], name: str) -> None:
    crds = [
        CrdSource(crd)
        for crd in shared_crds(PROJECT.root)
        if crd["spec"]["names"]["kind"] == "WorkflowTemplate"
    ]
    assert crds, "shared/crds has no WorkflowTemplate CRD"
    assert validate(templates[name], "1.34", crds, {}) == []


@pytest.mark.parametrize("name", FLOW_FILES)
def test_steps_run_as_the_team_with_platform_images(
    templates: dict[str, dict[str, Any]], config: dict[str, str], name: str
) -> None:
    template = templates[name]
    assert template["metadata"]["namespace"] == TEAM
    assert config["METAFLOW_KUBERNETES_QOS"] == "Guaranteed"  # hence limits equal requests below
    registry = ecr_registry_host("111122223333", "us-east-1")
    steps = _step_templates(template)
    assert steps
    for step in steps:
        assert step["serviceAccountName"] == "workflows", step["name"]
        assert step["container"]["image"] == config["METAFLOW_KUBERNETES_CONTAINER_IMAGE"]
        assert step["container"]["image"].startswith(f"{registry}/"), step["container"]["image"]
    # Every Metaflow step waits in the team's LocalQueue; Metaflow's own error hook carries no task labels.
    queued = [s for s in steps if s["name"] != "error-msg-capture-hook"]
    assert all(s["metadata"]["labels"][KUEUE_QUEUE_LABEL] == "default" for s in queued)
    for step in queued:
        resources = step["container"]["resources"]
        assert resources["limits"] == resources["requests"], step["name"]


def test_secrets_the_steps_mount_exist_in_the_team_namespace(templates: dict[str, dict[str, Any]]) -> None:
    """rag_ingest's `ingest` mounts qdrant-read-write, which the platform gives writer teams only."""
    plan = plan_of("dev")
    secrets = {
        (r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"])
        for r in plan.resources
        if r.type == "kubernetes:core/v1:Secret"
    }
    mounted = {
        (template["metadata"]["namespace"], source["secretRef"]["name"])
        for template in templates.values()
        for step in _step_templates(template)
        for source in step["container"].get("envFrom") or []
        if source.get("secretRef")
    }
    assert mounted == {(TEAM, "qdrant-read-write")}
    assert mounted <= secrets


def test_parallel_training_is_one_jobset_on_gpus(
    templates: dict[str, dict[str, Any]], config: dict[str, str]
) -> None:
    plan = plan_of("dev")
    pods, jobsets = workflow_pods(templates["finetune"], argo_executor(plan), NUM_PARALLEL)
    assert len(jobsets) == 1
    # Kueue gives the gang the GPU flavor dev's team has quota in: the gpu-dev pool and its taint's toleration.
    queues = queue_objects(world_of("dev"))
    trainers = [kueue_admitted(p, queues) for p in pods if p["metadata"]["name"].startswith("finetuneflow-train-")]
    assert len(trainers) == NUM_PARALLEL
    for trainer in trainers:
        assert trainer["spec"]["nodeSelector"]["mlstack.io/pool"] == "gpu-dev"
        assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in trainer[
            "spec"
        ]["tolerations"]
    jobset = jobsets[0]
    assert validate(jobset, "1.34", [CrdSource(jobset_crd())], {}) == []
    # Kueue's jobset integration admits the whole JobSet from this label (gang admission).
    assert jobset["metadata"]["labels"][KUEUE_QUEUE_LABEL] == "default"
    replicas = {job["name"]: int(job["replicas"]) for job in jobset["spec"]["replicatedJobs"]}
    assert replicas == {"control": 1, "worker": NUM_PARALLEL - 1}
    for job in jobset["spec"]["replicatedJobs"]:
        pod = job["template"]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "workflows"
        (container,) = pod["containers"]
        assert container["image"] == config["METAFLOW_KUBERNETES_CONTAINER_IMAGE"]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"


# -- Deployed into dev's deploy simulation -----------------------------------------------------------------

# Checks about the order `pulumi up` creates things in; workflows are created by users after the platform is up.
_NOT_FOR_WORKFLOWS = re.compile(r"^MLS-SIM-ORDER-")
# Capacity at idle: workflow pods exist only while a run is going (the peak and "has a home" checks stay).
_IDLE_ONLY = "MLS-SIM-CAP-001"
# Platform defects the simulation finds for workflow pods, each with its own strict xfail test below.
_KNOWN = {
    "MLS-SIM-ADM-005": "requests ephemeral-storage",
}


@pytest.fixture(scope="module")
def workflow_findings(templates: dict[str, dict[str, Any]]) -> list[Violation]:
    """What the deploy simulation finds once dev also runs the three flows, beyond what it finds for dev."""
    plan = plan_of("dev")
    base = world_of("dev")
    before = {(v.policy_id, v.message) for v in findings(base)}
    executor = argo_executor(plan)
    queues = queue_objects(base)
    objects: list[dict[str, Any]] = []
    for template in templates.values():
        pods, _ = workflow_pods(template, executor, NUM_PARALLEL)
        objects += [template, *(kueue_admitted(pod, queues) for pod in pods)]
    world = world_of("dev", plan_with(plan, objects))
    # The added objects are no Helm releases: reuse the charts rendered for dev instead of rendering again.
    world.cached("mlstack.simulate.objects.renders", lambda: renders(base))
    return [
        v
        for v in findings(world)
        if (v.policy_id, v.message) not in before
        and not _NOT_FOR_WORKFLOWS.match(v.policy_id)
        and v.policy_id != _IDLE_ONLY
    ]


def test_workflows_pass_the_deploy_simulation(workflow_findings: list[Violation]) -> None:
    unexpected = [
        f"{v.policy_id} {v.message}"
        for v in workflow_findings
        if not (v.policy_id in _KNOWN and _KNOWN[v.policy_id] in v.message)
    ]
    assert unexpected == []


def test_kueue_admits_metaflow_steps(workflow_findings: list[Violation]) -> None:
    assert [v.message for v in workflow_findings if v.policy_id == "MLS-SIM-ADM-005"] == []


def test_steps_have_a_home(workflow_findings: list[Violation]) -> None:
    assert [v.message for v in workflow_findings if v.policy_id == "MLS-SIM-CAP-003"] == []


# -- The guides include the files -------------------------------------------------------------------------


def test_guides_include_every_example_verbatim() -> None:
    """Each example file is included (pymdownx.snippets, base path examples/) by a guide, never copied; the
    docs build (`mkdocs build --strict`, snippets' check_paths) fails on an include whose file is missing."""
    import yaml

    config = yaml.load((PROJECT.root / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    snippets = next(
        e["pymdownx.snippets"] for e in config["markdown_extensions"] if isinstance(e, dict) and "pymdownx.snippets" in e
    )
    assert snippets["base_path"] == ["examples"]
    assert snippets["check_paths"] == "true"
    guides = "\n".join(p.read_text() for p in (PROJECT.root / "docs" / "guides").glob("*.md"))
    included = set(re.findall(r'^--8<-- "([^"]+)"$', guides, flags=re.MULTILINE))
    files = {p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("*.py")}
    assert included == files


def test_without_guaranteed_qos_limitranger_refuses_the_steps(
    templates: dict[str, dict[str, Any]],
) -> None:
    """Metaflow's default QoS sets requests only; the team LimitRange's default memory limit (2Gi) then
    undercuts the default 4096M request, which the platform config's Guaranteed QoS prevents."""
    plan = plan_of("dev")
    pods, _ = workflow_pods(templates["hello"], argo_executor(plan), NUM_PARALLEL)
    start = next(p for p in pods if p["metadata"]["name"] == "helloflow-start")
    main = next(c for c in start["spec"]["containers"] if c["name"] == "main")
    del main["resources"]["limits"]  # what Metaflow renders with METAFLOW_KUBERNETES_QOS unset (Burstable)
    refused = findings(world_of("dev", plan_with(plan, [start])), "MLS-SIM-ADM-001")
    assert any(
        "helloflow-start" in v.message and "memory request" in v.message and "LimitRange search/team-limits" in v.message
        for v in refused
    ), refused


def test_rag_ingest_trusts_the_platform_qdrant_ca_from_its_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The platform's Qdrant speaks TLS with its own CA (components/vectordb.py): the flow verifies the server
    with the `ca.crt` the team's Secret carries, as a real SSL context holding exactly that CA."""
    import datetime as dt
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dev Qdrant CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    monkeypatch.setenv("api-key", "k")
    monkeypatch.setenv("ca.crt", ca.public_bytes(serialization.Encoding.PEM).decode())
    captured: dict[str, Any] = {}

    class _Client:
        def __init__(self, **kwargs: Any) -> None:
            captured.update(kwargs)

    import qdrant_client

    monkeypatch.setattr(qdrant_client, "QdrantClient", _Client)
    rag = _module(FLOWS / "rag_ingest.py")
    rag.qdrant_client("https://qdrant.qdrant.svc.cluster.local:6333")
    verify = captured["verify"]
    assert isinstance(verify, ssl.SSLContext)
    assert [dict(x[0] for x in c["subject"]) for c in verify.get_ca_certs()] == [{"commonName": "dev Qdrant CA"}]
    assert captured["url"].startswith("https://") and captured["api_key"] == "k"
