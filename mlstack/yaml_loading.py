"""YAML reading shared by every file mlstack reads (stack files now; waivers and policy config can adopt it).

PyYAML's safe loader lets a repeated mapping key silently replace the earlier one, so ``tier: dev`` followed
by ``tier: prod`` gives prod without a word. :func:`safe_load_unique` refuses that instead.
"""

from __future__ import annotations

from typing import Any

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


def safe_load_unique(text: str) -> Any:
    """``yaml.safe_load`` that raises :class:`DuplicateKeyError` on a repeated mapping key."""
    return yaml.load(text, Loader=UniqueKeySafeLoader)  # noqa: S506 - a SafeLoader subclass
