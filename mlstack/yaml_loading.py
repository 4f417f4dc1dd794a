"""YAML reading shared by every file mlstack reads (stack files now; waivers and policy config can adopt it).

PyYAML's safe loader lets a repeated mapping key silently replace the earlier one, so ``tier: dev`` followed
by ``tier: prod`` gives prod without a word. :func:`safe_load_unique` refuses that instead.

:func:`fast_safe_load` reads the project's own data tables (instance types, managed policies, metric and alert
catalogs) with libyaml's parser: those are read on every plan and check, and the pure-Python parser spends
a quarter of a second on the instance table alone (docs/benchmarks.md).
"""

from __future__ import annotations

from typing import IO, Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode


class DuplicateKeyError(ConstructorError):
    """A mapping names the same key twice. ``problem_mark`` is the repeated key's position."""

    def __init__(self, key: Any, first: yaml.Mark, again: yaml.Mark):
        self.key, self.first, self.again = key, first, again
        super().__init__(
            "while reading a mapping",
            first,
            f"duplicate key '{key}' (first at line {first.line + 1}); keep only one of them",
            again,
        )


class UniqueKeySafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with a repeated key instead of keeping the last value."""

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            # Only keys written in this mapping count: a key that overrides one brought in by a '<<' merge is
            # how merges are meant to be used.
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise DuplicateKeyError(key, seen[key], key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


# libyaml's parser with PyYAML's own safe constructor and resolver (``yaml.CSafeLoader``): the values are the
# ones ``yaml.safe_load`` gives, about six times faster on the instance table. PyYAML built without libyaml
# falls back to the pure-Python parser. Only the parser differs, so it is for text the project ships or a tool
# wrote (data tables, rendered chart values); a user's file gets :func:`safe_load_unique`, whose error messages
# quote the offending line.
_FAST_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def fast_safe_load(stream: str | bytes | IO[str] | IO[bytes]) -> Any:
    """``yaml.safe_load`` through libyaml's parser when PyYAML has it (the same values, faster)."""
    return yaml.load(stream, Loader=_FAST_SAFE_LOADER)  # noqa: S506 - a safe loader (SafeConstructor)


def safe_load_unique(text: str) -> Any:
    """``yaml.safe_load`` that raises :class:`DuplicateKeyError` on a repeated mapping key."""
    return yaml.load(text, Loader=UniqueKeySafeLoader)  # noqa: S506 - a SafeLoader subclass
