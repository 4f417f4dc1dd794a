"""What the offline check (`mlstack check`) and the live commands (`preflight`, `audit`) share in their output:
the format names, the SARIF 2.1.0 log around a tool's results, the JUnit XML document, and markdown cells.

Each command decides what its results are; this module only makes sure a pipeline reads both alike.
"""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET

FORMATS: tuple[str, ...] = ("table", "json", "sarif", "junit", "markdown")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def sarif_log(driver: dict[str, Any], results: list[dict[str, Any]], **run: Any) -> str:
    """A SARIF 2.1.0 log of one run of the tool ``driver`` (name, rules, ...) with its ``results``; ``run``
    adds run properties (``automationDetails``, ``originalUriBaseIds``)."""
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, **run, "results": results}],
    }
    return json.dumps(document, indent=2) + "\n"


def junit_document(suites: ET.Element) -> str:
    """A ``<testsuites>`` element as an indented JUnit XML document."""
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def markdown_cell(text: str, max_length: int | None = None) -> str:
    """``text`` as one markdown table cell: on one line, pipes escaped, cut to ``max_length`` with an ellipsis."""
    text = " ".join(text.split()).replace("|", "\\|")
    if max_length is None or len(text) <= max_length:
        return text
    return text[: max_length - 1] + "…"
