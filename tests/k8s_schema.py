"""Validate the Kubernetes objects a plan records, against the schema the cluster would apply.

Built-in kinds are checked with the ``kubernetes-validate`` package for the cluster's Kubernetes version
(strict: unknown fields are errors). Custom kinds are checked against the upstream CRDs in ``shared/crds``,
found by walking up from the repository root, so that this works in the main checkout, in a worktree and in
CI's clone. CRD schemas are made strict the same way: an object without ``x-kubernetes-preserve-unknown-fields``
refuses keys it does not declare. CEL rules (``x-kubernetes-validations``) are not evaluated.

API: ``kubernetes_objects(plan)`` and ``validate_object(obj, kubernetes_version)``.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv_utils

from mlstack.plan.recorder import Plan

ROOT = Path(__file__).resolve().parent.parent
# Resource types that are Pulumi constructs around Kubernetes, not Kubernetes objects themselves.
_NOT_OBJECTS = ("kubernetes:helm.sh/", "pulumi:providers:kubernetes", "kubernetes:yaml")


def crd_directory(start: Path = ROOT) -> Path:
    """The nearest ``shared/crds`` folder at or above ``start``."""
    for folder in (start, *start.parents):
        candidate = folder / "shared" / "crds"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no shared/crds folder at or above {start}")


def kubernetes_objects(plan: Plan) -> list[dict[str, Any]]:
    """Every Kubernetes object the plan would apply, rebuilt from its recorded inputs."""
    objects = []
    for resource in plan.resources:
        if not resource.type.startswith("kubernetes:") or resource.type.startswith(_NOT_OBJECTS):
            continue
        if "apiVersion" in resource.inputs and "kind" in resource.inputs:
            objects.append(unwrap_secrets(copy.deepcopy(resource.inputs)))
    return objects


# Pulumi's wire format wraps a secret value in an object carrying this signature key.
_SECRET_SIG = "4dabf18193072939515e22adb298388d"


def unwrap_secrets(value: Any) -> Any:
    """The object as the API server receives it: secret envelopes of the wire format replaced by their value."""
    if isinstance(value, dict):
        if _SECRET_SIG in value:
            return unwrap_secrets(value.get("value"))
        return {key: unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(item) for item in value]
    return value


def supported_version(kubernetes_version: str) -> str:
    """The newest schema version kubernetes-validate has for this minor, or its newest overall as a fallback."""
    versions = kv_utils.all_versions()
    same_minor = [v for v in versions if kv_utils.major_minor(v) == kv_utils.major_minor(kubernetes_version)]
    if same_minor:
        return same_minor[-1]
    return kv_utils.latest_version()


def validate_object(obj: dict[str, Any], kubernetes_version: str) -> list[str]:
    """Problems with one object, each as '<kind>/<name>: <path>: <message>'; empty when it validates."""
    kind, name = obj.get("kind", "?"), (obj.get("metadata") or {}).get("name", "?")
    schema = _crd_schemas().get((obj.get("apiVersion", ""), kind))
    if schema is not None:
        validator = jsonschema.Draft7Validator(schema)
        return [
            f"{kind}/{name}: {'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
            for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
        ]
    try:
        kubernetes_validate.validate(obj, supported_version(kubernetes_version), strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(p) for p in error.path) or "<root>"
        return [f"{kind}/{name}: {path}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [
            f"{kind}/{name}: no schema for {obj.get('apiVersion')} {kind}: not built in and no CRD in shared/crds"
        ]
    return []


@cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(crd_directory().glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def _strict(schema: Any) -> Any:
    """Refuse undeclared keys, as the API server's pruning would silently drop them."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key != "x-kubernetes-validations":
                _strict(value)
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        for item in schema:
            _strict(item)
    return schema
