"""Schema validation of every Kubernetes object the deploy would apply, ours and the charts'.

Built-in kinds are validated with the ``kubernetes-validate`` package's strict schemas (unknown fields are
errors) for the cluster's Kubernetes minor version. Custom kinds are validated against their CRD's
``openAPIV3Schema`` for the object's version: the CRD its own release renders first, then one the plan
installs (a release's or ours), then the upstream reference copy in ``shared/crds``
(:func:`mlstack.simulate.crds.candidates`). CRD schemas are made strict the way the API server's pruning
treats them: an object schema with ``properties`` and no ``x-kubernetes-preserve-unknown-fields`` refuses
undeclared keys (they would be silently dropped, so a misspelt field never takes effect).

Not modelled: CEL rules (``x-kubernetes-validations``), ``format`` checks, defaulting, and the API server's
own validation code beyond the OpenAPI schema (e.g. a PodDisruptionBudget with both minAvailable and
maxUnavailable passes the schema; admission checks such rules). A kind with no schema anywhere is reported
as "cannot validate", never passed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from functools import cache
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
from kubernetes_validate import utils as kv_utils
from kubernetes_validate.version import __version__ as KV_VERSION
from pulumi_policy import Severity

from mlstack.simulate.crds import CrdSource, candidates, group_of, version_of
from mlstack.simulate.framework import SimResult, World, derived, sim_check
from mlstack.simulate.objects import all_objects

# Errors reported per object: the first few tell what is wrong; hundreds from one broken template do not help.
MAX_ERRORS_PER_OBJECT = 5


class NoSchema(Exception):
    """No schema for an object's apiVersion and kind; the message says where it was looked for."""


@cache
def supported_version(kubernetes_version: str) -> str | None:
    """The newest schema version kubernetes-validate ships for this minor, or None when it has none.

    Answered once per version: ``all_versions`` lists and sorts the package's schema folders on every call,
    and the ordering check asks for each of the plan's objects (``is_builtin``)."""
    wanted = kv_utils.major_minor(kubernetes_version)
    same_minor = [v for v in kv_utils.all_versions() if kv_utils.major_minor(v) == wanted]
    return same_minor[-1] if same_minor else None


def strip_nulls(value: Any) -> Any:
    """The object as the API server decodes it: a ``null`` field is the same as an absent one (and a CRD
    field without ``nullable: true`` has its nulls pruned before validation)."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value if v is not None]
    return value


@cache
def _builtin_validator(version: str, kind: str, api_version: str) -> jsonschema.protocols.Validator:
    """A strict validator for a built-in kind, built once (kubernetes-validate's own ``validate`` re-reads its
    definitions file on every call). Same file layout and resolution as ``kubernetes_validate.utils.validate``."""
    group_version = api_version
    if "/" in api_version:
        group, ver = api_version.split("/", 1)
        group_version = f"{group.split('.', 1)[0]}-{ver}"
    directory = f"kubernetes-json-schema/v{version}-local-strict"
    try:
        schema = kv_utils.schema_contents(f"{directory}/{kind.lower()}-{group_version}.json", version)
    except FileNotFoundError:
        raise NoSchema(
            f"no schema for {api_version} {kind}: not a built-in kind of Kubernetes {version} and no CRD "
            "in the plan or shared/crds"
        ) from None
    registry = referencing.Resource.from_contents(schema) @ _definitions(version)
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@cache
def _definitions(version: str) -> referencing.Registry[Any]:
    """kubernetes-validate's shared definitions (1.5 MB of JSON) for one version, read once."""
    definitions = kv_utils.schema_contents(
        f"kubernetes-json-schema/v{version}-local-strict/_definitions.json", version
    )
    return referencing.Resource.from_contents(definitions) @ referencing.Registry()


def is_builtin(kubernetes_version: str, api_version: str, kind: str) -> bool | None:
    """Whether kubernetes-validate has a built-in schema for this kind (None: no schemas for the version)."""
    version = supported_version(kubernetes_version)
    if version is None:
        return None
    try:
        _builtin_validator(version, kind, api_version)
    except NoSchema:
        return False
    return True


def _strict(schema: Any) -> Any:
    """Refuse undeclared keys, as the API server's pruning would silently drop them (in place)."""
    if isinstance(schema, dict):
        if schema.get("x-kubernetes-embedded-resource"):
            # An embedded object always admits its apiVersion, kind and metadata (structural schema rules).
            properties = schema.setdefault("properties", {})
            for key in ("apiVersion", "kind"):
                properties.setdefault(key, {"type": "string"})
            properties.setdefault("metadata", {"type": "object"})
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


@derived
def _crd_validators(world: World) -> dict[tuple[int, str], jsonschema.protocols.Validator]:
    """Compiled CRD validators, by (id of the CRD document, version); filled on first use."""
    return {}


def _custom_validator(
    api_version: str,
    kind: str,
    sources: Iterable[CrdSource],
    compiled: dict[tuple[int, str], jsonschema.protocols.Validator],
) -> jsonschema.protocols.Validator | None:
    """The validator for a custom object from the first of ``sources`` (its CRDs, best first) serving its
    version; None when there is no CRD for its kind (a built-in kind, or none at all).

    Raises :class:`NoSchema` when CRDs for the kind exist but none serves the object's version, or the served
    version carries no schema."""
    version = version_of(api_version)
    seen = []
    for source in sources:
        seen.append(source)
        entry = source.served_versions().get(version)
        if entry is None:
            continue
        schema = (entry.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            raise NoSchema(f"the CRD for {api_version} {kind} ({source.describe()}) has no schema")
        key = (id(source.crd), version)
        if key not in compiled:
            compiled[key] = jsonschema.Draft7Validator(_strict(copy.deepcopy(schema)))
        return compiled[key]
    if not seen:
        return None
    served = sorted({v for s in seen for v in s.served_versions()})
    raise NoSchema(
        f"no CRD serves {api_version} {kind}: its CRDs ({seen[0].describe()}) serve "
        f"{', '.join(f'{group_of(api_version)}/{v}' for v in served) or 'no version'}"
    )


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<root>"


class _NoBuiltinSchemas(Exception):
    """kubernetes-validate has no schemas for the cluster's version (reported once per stack)."""


def validate(
    obj: dict[str, Any],
    kubernetes_version: str | None,
    crds: Iterable[CrdSource],
    compiled: dict[tuple[int, str], jsonschema.protocols.Validator],
) -> list[str]:
    """Problems with one object, each as '<path>: <message>'; empty when it validates.

    ``crds`` are the CRDs that could define its kind, best first (:func:`mlstack.simulate.crds.candidates`);
    ``compiled`` caches their validators. Raises :class:`NoSchema` when there is no schema to validate it
    with."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    obj = strip_nulls(obj)
    custom = _custom_validator(api_version, kind, crds, compiled)
    if custom is not None:
        validator = custom
    elif kubernetes_version is None:
        raise _NoBuiltinSchemas
    else:
        validator = _builtin_validator(kubernetes_version, kind, api_version)
    try:
        errors = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    except referencing.exceptions.Unresolvable as exc:
        raise NoSchema(f"the schema for {api_version} {kind} has an unresolvable reference: {exc}") from None
    return [f"{_path(e)}: {e.message}" for e in errors]


def _short(message: str) -> str:
    """jsonschema quotes the whole offending instance; keep findings one readable line."""
    return message if len(message) <= 300 else message[:297] + "..."


@sim_check(
    "MLS-SIM-SCHEMA-001",
    title="Every Kubernetes object validates against its schema, ours and the charts'",
    why=(
        "The API server refuses an object that does not match its kind's schema (a wrong type, a missing "
        "required field, a version its CRD does not serve) and silently drops fields it does not know, so a "
        "misspelt key never takes effect; a chart value that renders such an object fails the release"
    ),
    severity=Severity.HIGH,
    remediation=(
        "Fix the field the finding names in the component (our objects) or in the release's values (chart "
        "objects); for 'cannot validate', add the kind's upstream CRD at the pinned version to shared/crds, or "
        "install it from the plan"
    ),
    subjects=("kubernetes:*", "kubernetes:helm.sh/v3:Release"),
)
def objects_match_their_schema(world: World) -> SimResult:
    wanted = str(getattr(world.spec.cluster, "kubernetes_version", ""))
    version = supported_version(wanted)
    if version is None:
        yield (
            f"cannot validate built-in kinds: kubernetes-validate {KV_VERSION} ships no schemas for Kubernetes "
            f"{wanted} (newest: {kv_utils.latest_version()}); upgrade kubernetes-validate",
            None,
        )
    compiled = _crd_validators(world)
    for item in all_objects(world):
        try:
            problems = validate(item.obj, version, candidates(world, item), compiled)
        except NoSchema as exc:
            yield f"{item.label}: cannot validate: {exc}", item.urn
            continue
        except _NoBuiltinSchemas:
            continue  # reported once above
        for problem in problems[:MAX_ERRORS_PER_OBJECT]:
            yield f"{item.label}: {_short(problem)}", item.urn
        if len(problems) > MAX_ERRORS_PER_OBJECT:
            yield f"{item.label}: {len(problems) - MAX_ERRORS_PER_OBJECT} more schema errors", item.urn
