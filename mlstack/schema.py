"""The JSON Schema of stack files, for editors (yaml-language-server) and for the reference docs."""

from __future__ import annotations

import json
from typing import Any

from mlstack.spec import PlatformSpec
from mlstack.spec.loader import SPEC_KEY

SCHEMA_PATH = "docs/reference/stack-file.schema.json"


def stack_file_schema() -> dict[str, Any]:
    """A schema for a whole stack file: ``config`` holding ``aws:region`` and the environment spec."""
    spec_schema = PlatformSpec.model_json_schema(mode="validation")
    definitions = spec_schema.pop("$defs", {})
    definitions["PlatformSpec"] = spec_schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://mlstack.dev/schemas/stack-file.json",
        "title": "mlstack stack file",
        "description": "A Pulumi stack file of the mlstack project (stacks/Pulumi.<env>.yaml).",
        "type": "object",
        "required": ["config"],
        "properties": {
            "config": {
                "type": "object",
                "required": ["aws:region", SPEC_KEY],
                "properties": {
                    "aws:region": {
                        "type": "string",
                        "description": "AWS region; equal to the spec's region.",
                    },
                    SPEC_KEY: {"$ref": "#/$defs/PlatformSpec"},
                },
            },
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
        },
        "$defs": dict(sorted(definitions.items())),
    }


def render_schema() -> str:
    return json.dumps(stack_file_schema(), indent=2, sort_keys=True) + "\n"
