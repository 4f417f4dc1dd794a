"""Input tables for docs/components/*.md, generated from the spec models so that the docs cannot drift.

Each page holds its table between ``<!-- BEGIN GENERATED INPUTS -->`` and ``<!-- END GENERATED INPUTS -->``;
``python -m mlstack.reference`` rewrites those blocks and tests/test_docs.py fails when one is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel

from mlstack.spec.access import AccessHostSpec, DeployRunnerSpec
from mlstack.spec.cluster import ClusterSpec, SystemNodeGroupSpec
from mlstack.spec.compute import CpuPoolSpec
from mlstack.spec.deployment import DeploymentSpec, IdentityCenterSpec
from mlstack.spec.gpu import GpuPoolSpec, GpuSharingSpec
from mlstack.spec.network import ExistingVpc, NetworkSpec
from mlstack.spec.notebooks import NotebookSsoSpec, NotebooksSpec
from mlstack.spec.orchestrator import ArgoSsoSpec, OrchestratorSpec
from mlstack.spec.secrets import ExternalSecretsSpec
from mlstack.spec.vectordb import VectorDbSpec

BEGIN, END = "<!-- BEGIN GENERATED INPUTS -->", "<!-- END GENERATED INPUTS -->"
PAGES: dict[str, list[tuple[str, type[BaseModel]]]] = {
    "docs/components/network.md": [("network", NetworkSpec), ("network.existing_vpc", ExistingVpc)],
    "docs/components/cluster.md": [("cluster", ClusterSpec), ("cluster.system_nodes", SystemNodeGroupSpec)],
    "docs/components/gpu.md": [("gpu_pools[]", GpuPoolSpec), ("gpu_pools[].sharing", GpuSharingSpec)],
    "docs/components/orchestrator.md": [
        ("orchestrator", OrchestratorSpec),
        ("orchestrator.sso", ArgoSsoSpec),
    ],
    "docs/components/vectordb.md": [("vector_db", VectorDbSpec)],
    "docs/components/deployer.md": [("deploy_runner", DeployRunnerSpec)],
    "docs/components/access.md": [("access_host", AccessHostSpec)],
    "docs/components/compute.md": [("cpu_pools[]", CpuPoolSpec)],
    "docs/components/account.md": [
        ("deployment", DeploymentSpec),
        ("deployment.identity_center", IdentityCenterSpec),
    ],
    "docs/components/notebooks.md": [("notebooks", NotebooksSpec), ("notebooks.sso", NotebookSsoSpec)],
    "docs/components/secrets.md": [("external_secrets", ExternalSecretsSpec)],
}


def inputs_table(prefix: str, model: type[BaseModel]) -> str:
    """A Markdown table of a model's fields: key, type, required, and the description with its default."""
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    rows = [f"#### `{prefix}`", "", "| Key | Type | Required | Description |", "|---|---|---|---|"]
    for key, field in schema["properties"].items():
        description = (field.get("description") or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{key}` | {_type(field)} | {'yes' if key in required else 'no'} | {description} |")
    return "\n".join(rows) + "\n"


def render_page(text: str, sections: list[tuple[str, type[BaseModel]]]) -> str:
    """The page with its generated block replaced by fresh tables."""
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    body = "\n".join(inputs_table(prefix, model) for prefix, model in sections)
    return f"{head}{BEGIN}\n{body}{END}{tail}"


def _type(field: dict) -> str:
    if "anyOf" in field:
        return " or ".join(_type(option) for option in field["anyOf"])
    if "$ref" in field:
        return field["$ref"].rsplit("/", 1)[-1]
    if "enum" in field:
        return " \\| ".join(f"`{v}`" for v in field["enum"])
    if field.get("type") == "array":
        return f"list of {_type(field.get('items', {}))}"
    return str(field.get("type", "any"))


def main(root: Path) -> None:
    for page, sections in PAGES.items():
        path = root / page
        path.write_text(render_page(path.read_text(), sections))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())
