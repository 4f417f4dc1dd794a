"""PromQL as mlstack reads it: the metric names an expression selects (parsed with ``promql-parser``, a binding of
the Rust ``promql-parser`` crate, GreptimeDB's parser of the Prometheus grammar) and the table of which exporter
produces which metric (``mlstack/data/metrics.yaml``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import promql_parser

from mlstack.yaml_loading import fast_safe_load

CATALOG_FILE = Path(__file__).resolve().parent / "data" / "metrics.yaml"


@cache
def metric_catalog(path: Path = CATALOG_FILE) -> tuple[dict[str, frozenset[str]], dict[str, str]]:
    """(exporter -> the metrics it produces, chart monitor name -> its exporter) from ``mlstack/data/metrics.yaml``."""
    data = fast_safe_load(path.read_text(encoding="utf-8"))
    exporters = {name: frozenset(entry["metrics"]) for name, entry in data["exporters"].items()}
    return exporters, dict(data.get("chart_monitors") or {})


class BadQuery(ValueError):
    """A PromQL expression the parser refuses; the message is the parser's."""


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL expression selects (every vector selector's name, or its ``__name__``
    equality matcher). Raises BadQuery when the expression does not parse."""
    try:
        tree = promql_parser.parse(query)
    except ValueError as error:
        raise BadQuery(str(error)) from error
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(str(node.name))
            else:
                for matcher in node.matchers.matchers:
                    if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
                        names.add(str(matcher.value))

    promql_parser.walk(tree, visit)
    return names


