"""The stack-file reference shows each field's regular expression literally (issue 18): rendered by
Python-Markdown with the tables extension that mkdocs.yml enables, a pattern such as
``^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$`` used to become "^a-z?$" with a broken link."""

from __future__ import annotations

import html
import re
from typing import Any

import markdown

from mlstack.docgen import render_stack_file_reference
from mlstack.schema import stack_file_schema


def _patterns(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
        for value in node.values():
            found |= _patterns(value)
        return found
    if isinstance(node, list):
        return {p for item in node for p in _patterns(item)}
    return set()


def test_every_pattern_renders_as_literal_code_in_its_table_cell() -> None:
    patterns = _patterns(stack_file_schema())
    assert any("|" in p for p in patterns) and any("[" in p for p in patterns)  # the hard cases are covered
    page = markdown.markdown(render_stack_file_reference(), extensions=["tables"])
    codes = {html.unescape(code) for code in re.findall(r"<code>(.*?)</code>", page)}
    assert patterns <= codes, sorted(patterns - codes)
    # Links on the page are the schema file and type cross-references (#model), never part of a regex.
    links = set(re.findall(r'<a href="([^"]*)"', page))
    assert {link for link in links if not link.startswith("#")} == {"stack-file.schema.json"}
    # A pipe inside a pattern does not split its table row: every field row keeps its four cells.
    header = "| field | type | default | description |\n| --- | --- | --- | --- |\n"
    rows = [line for line in render_stack_file_reference().splitlines() if line.startswith("| `")]
    cells = {row: markdown.markdown(header + row, extensions=["tables"]).count("<td>") for row in rows}
    assert {row: count for row, count in cells.items() if count != 4} == {}
