"""Reading stack files and turning them into a validated PlatformSpec, with one readable error for bad input."""

from __future__ import annotations

import copy
import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mlstack.spec import PlatformSpec
from mlstack.spec.base import RuleViolations
from mlstack.yaml_loading import DuplicateKeyError, safe_load_unique

PROJECT = "mlstack"
SPEC_KEY = f"{PROJECT}:platform"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a stack file: where (dotted field path), what, and how to fix it."""

    path: str
    message: str
    hint: str = ""

    def render(self) -> str:
        text = f"{self.path or '(top level)'}: {self.message}"
        return f"{text}\n      fix: {self.hint}" if self.hint else text


@dataclass
class SpecError(Exception):
    """A stack file that cannot be used. Rendered as one message that lists every problem."""

    source: str
    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        count = len(self.problems)
        lines = [f"{self.source}: {count} problem{'s' if count != 1 else ''} in the stack configuration"]
        lines += [f"  - {problem.render()}" for problem in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class StackConfig:
    """A stack file's config block, as Pulumi would hand it to the program."""

    source: str
    stack: str
    values: dict[str, Any]

    def wire_config(self) -> dict[str, str]:
        """The config as the Pulumi engine passes it: every value a string, objects and lists as JSON."""
        return {key: _wire_value(value) for key, value in self.values.items()}


def _wire_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) and set(value) == {"secure"}:
        # An encrypted value cannot be decrypted offline; the program sees a placeholder of the same kind.
        return "[secret]"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def stack_file(stacks_dir: Path, stack: str) -> Path:
    return stacks_dir / f"Pulumi.{stack}.yaml"


def read_stack_config(path: Path) -> StackConfig:
    """Read a stack file's config block, namespacing bare keys with the project name like Pulumi does."""
    source = str(path)
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml").removesuffix(".yml")
    if not path.is_file():
        raise SpecError(
            source,
            [
                Problem(
                    "", "the stack file does not exist", f"create it, or pick one of: {_known(path.parent)}"
                )
            ],
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(source, [_unreadable(exc)]) from None
    try:
        document = safe_load_unique(text) or {}
    except DuplicateKeyError as exc:
        problem = Problem(
            "",
            f"key '{exc.key}' is repeated in one mapping (lines {exc.first.line + 1} and {exc.again.line + 1}); "
            "YAML would silently keep only the last value",
            f"keep one '{exc.key}' (line {exc.again.line + 1} is the repeat)",
        )
        raise SpecError(source, [problem]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise SpecError(
            source,
            [
                Problem(
                    "",
                    f"not valid YAML ({where}): {getattr(exc, 'problem', exc)}",
                    "fix the YAML syntax at that position",
                )
            ],
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise SpecError(
            source,
            [
                Problem(
                    "config",
                    "the stack file must be a mapping with a 'config' mapping",
                    "start the file with 'config:' and indent the keys under it",
                )
            ],
        )
    values: dict[str, Any] = {}
    for key, value in (document.get("config") or {}).items():
        values[key if ":" in str(key) else f"{PROJECT}:{key}"] = value
    return StackConfig(source=source, stack=stack, values=values)


def _unreadable(exc: OSError | UnicodeDecodeError) -> Problem:
    if isinstance(exc, UnicodeDecodeError):
        return Problem(
            "",
            f"not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset {exc.start} cannot be decoded",
            "save the file as UTF-8",
        )
    return Problem("", f"cannot be read: {exc.strerror or exc}", "check the file's permissions and type")


def _known(stacks_dir: Path) -> str:
    names = sorted(
        p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in stacks_dir.glob("Pulumi.*.yaml")
    )
    return ", ".join(names) or "(no stack files found)"


def parse_spec(raw: Any, source: str, region: str | None = None) -> PlatformSpec:
    """Validate the raw ``mlstack:platform`` value. Raises SpecError listing every problem at once."""
    if raw is None:
        raise SpecError(
            source,
            [
                Problem(
                    f"config.{SPEC_KEY}",
                    "the environment spec is missing",
                    f"add a '{SPEC_KEY}' mapping under 'config' (see docs/stack-files.md)",
                )
            ],
        )
    if not isinstance(raw, dict):
        raise SpecError(
            source,
            [
                Problem(
                    f"config.{SPEC_KEY}",
                    f"must be a mapping, got {type(raw).__name__}",
                    "indent the environment's fields under the key",
                )
            ],
        )
    problems: list[Problem] = []
    spec: PlatformSpec | None = None
    try:
        spec = PlatformSpec.model_validate(raw)
    except ValidationError as exc:
        problems = _problems_from(exc)
        problems += _cross_field_problems_despite(raw, exc, problems)
    # Checked on the raw value too, so a mismatch is still reported when rules that depend on the region
    # (image registries, for example) fail because of it.
    declared = spec.region if spec is not None else raw.get("region")
    if isinstance(declared, str) and region is not None and region != declared:
        problems.append(
            Problem(
                "region",
                f"'{declared}' differs from the stack's aws:region '{region}'",
                "make both the same region",
            )
        )
    if problems or spec is None:
        raise SpecError(source, problems)
    return spec


def load_spec(path: Path) -> tuple[StackConfig, PlatformSpec]:
    """Read and validate a stack file. Raises SpecError naming the file and every failing field."""
    config = read_stack_config(path)
    region = config.values.get("aws:region")
    problems: list[Problem] = []
    if region is None:
        problems.append(
            Problem(
                "config.aws:region",
                "the AWS region is not set",
                "add 'aws:region: <region>' under 'config', equal to the spec's region",
            )
        )
    problems += _stray_keys(config.values)
    try:
        spec = parse_spec(config.values.get(SPEC_KEY), config.source, region)
    except SpecError as exc:
        raise SpecError(config.source, problems + exc.problems) from None
    if problems:
        raise SpecError(config.source, problems)
    return config, spec


def _stray_keys(values: dict[str, Any]) -> list[Problem]:
    """Keys of this project's namespace that the program never reads: a misspelt ``mlstack:platform`` would
    otherwise surface only as "the environment spec is missing"."""
    problems = []
    for key in sorted(k for k in values if str(k).startswith(f"{PROJECT}:") and k != SPEC_KEY):
        close = difflib.get_close_matches(str(key), [SPEC_KEY], n=1)
        problems.append(
            Problem(
                f"config.{key}",
                "unknown key; the program reads only " + SPEC_KEY + " from this project's config",
                f"did you mean {SPEC_KEY}? rename it" if close else "remove it",
            )
        )
    return problems


def _problems_from(exc: ValidationError) -> list[Problem]:
    return _problems_from_errors(exc.errors(include_url=False))


def _problems_from_errors(errors: Any) -> list[Problem]:
    problems: list[Problem] = []
    for error in errors:
        loc = [str(part) for part in error["loc"]]
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, RuleViolations):
            prefix = ".".join(loc)
            for path, message in cause.problems:
                problems.append(Problem(f"{prefix}.{path}" if prefix else path, message))
            continue
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] not in {"value_error", "missing"} and "input" in error:
            message += f" (got {json.dumps(error['input'], default=str)[:80]})"
        hint = _hint(PlatformSpec, error["loc"], error["type"])
        if error["type"] == "string_type" and type(error.get("input")) in (int, float):
            # YAML 1.1 reads `1.30` as the float 1.3, so the trailing zero is gone before validation sees it.
            leaf = next((str(p) for p in reversed(error["loc"]) if isinstance(p, str)), "the value")
            hint = (
                f'put the value in quotes, e.g. {leaf}: "{error["input"]}"; YAML reads an unquoted number as a '
                'number and drops trailing zeros (1.30 becomes 1.3), so write "1.30" if that is what you meant'
                + (f". {hint}" if hint else "")
            )
        problems.append(Problem(".".join(loc), message, hint))
    return problems


# Bounded: each round removes at least one value, and a stack file has a few hundred at most.
_PRUNE_ROUNDS = 8
LEFT_OUT = "found with the invalid fields above left out"


def _cross_field_problems_despite(
    raw: dict[str, Any], exc: ValidationError, found: list[Problem]
) -> list[Problem]:
    """The cross-field problems that field errors hide, so that one run lists every problem (STYLE.md rule 4).

    pydantic runs a model's ``mode="after"`` validators only when every field is valid, so a typo in one field
    hides, say, an endpoint naming an undeclared pool. This validates the document again with the invalid
    values left out (a field with a default takes it; a required number takes its lower bound) and returns the
    rule violations found then, except those about a left-out field or its parents, which could be artefacts of
    the substitution. When a left-out value cannot be replaced (a required text field, a whole list item), the
    rules cannot run and nothing is added.
    """
    data = copy.deepcopy(raw)
    left_out: list[tuple[Any, ...]] = []
    error = exc
    for _ in range(_PRUNE_ROUNDS):
        rule_errors: list[Any] = []
        field_errors: list[Any] = []
        for item in error.errors(include_url=False):
            cause = (item.get("ctx") or {}).get("error")
            # The spec's own cross-field rules report at the root; a nested model's rules are field errors here.
            top_rules = isinstance(cause, RuleViolations) and not item["loc"]
            (rule_errors if top_rules else field_errors).append(item)
        if not field_errors:
            if error is exc:  # the first run reached the cross-field rules: nothing was hidden
                return []
            extra = []
            seen = {(p.path, p.message) for p in found}
            for item in rule_errors:
                for problem in _problems_from_errors([item]):
                    if (
                        _near(problem.path, problem.message, left_out)
                        or (problem.path, problem.message) in seen
                    ):
                        continue
                    extra.append(Problem(problem.path, f"{problem.message} ({LEFT_OUT})", problem.hint))
            return extra
        # Deepest first and list items from the end, so that one removal does not shift another's index.
        locations = sorted(
            (loc for item in field_errors for loc in _locations(item)), key=_sort_key, reverse=True
        )
        if not locations or not all(_leave_out(data, loc) for loc in locations):
            return []
        left_out += locations
        try:
            PlatformSpec.model_validate(data)
        except ValidationError as again:
            error = again
            continue
        return []
    return []


def _locations(item: Any) -> list[tuple[Any, ...]]:
    loc = tuple(item["loc"])
    cause = (item.get("ctx") or {}).get("error")
    if isinstance(cause, RuleViolations):  # a nested model's rules name their own fields
        return [
            loc + tuple(int(part) if part.isdigit() else part for part in path.split("."))
            for path, _ in cause.problems
        ]
    if item["type"] == "missing":
        return [("__missing__", *loc)]
    return [loc]


def _sort_key(loc: tuple[Any, ...]) -> tuple[int, str]:
    return (len(loc), json.dumps([str(p).zfill(6) if isinstance(p, int) else p for p in loc]))


def _leave_out(data: Any, loc: tuple[Any, ...]) -> bool:
    """Remove the value at ``loc`` (or, for a missing required number, fill in its lower bound); False when that
    is not possible without changing what the other rules see."""
    if loc[:1] == ("__missing__",):
        return _fill_missing(data, loc[1:])
    if not loc:
        return False
    parent = data
    for part in loc[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return False
    leaf = loc[-1]
    if isinstance(parent, dict) and leaf in parent:
        del parent[leaf]
        return True
    if isinstance(parent, list) and isinstance(leaf, int) and 0 <= leaf < len(parent):
        # An item of a list of values (instance types, zones); a whole model item (a pool, a team) is named by
        # other sections, and leaving it out would report those references as undeclared.
        if isinstance(parent[leaf], dict):
            return False
        del parent[leaf]
        return True
    return False


def _fill_missing(data: Any, loc: tuple[Any, ...]) -> bool:
    model: Any = PlatformSpec
    parent = data
    for part in loc[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return False
        if not isinstance(part, int):
            info = getattr(model, "model_fields", {}).get(part)
            model = _model_in(info.annotation) if info is not None else None
    info = getattr(model, "model_fields", {}).get(loc[-1]) if loc else None
    if info is None or not isinstance(parent, dict) or info.annotation not in (int, float):
        return False
    ge = next((m.ge for m in info.metadata if getattr(m, "ge", None) is not None), None)
    gt = next((m.gt for m in info.metadata if getattr(m, "gt", None) is not None), None)
    if ge is not None:
        parent[loc[-1]] = ge
    elif gt is not None and info.annotation is int:
        parent[loc[-1]] = gt + 1
    else:
        return False
    return True


def _near(path: str, message: str, left_out: list[tuple[Any, ...]]) -> bool:
    """Whether ``path`` is a left-out field, inside one, or one of its parents, or ``message`` names one (a rule
    about, say, a pool's max_gpus that the substitute value could have broken)."""
    for loc in left_out:
        other = ".".join(str(p) for p in loc if p != "__missing__")
        if path == other or path.startswith(other + ".") or other.startswith(path + ".") or not path:
            return True
        names = [p for p in loc if isinstance(p, str) and p != "__missing__"]
        if names and re.search(rf"\b{re.escape(names[-1])}\b", message):
            return True
    return False


def _hint(model: type[BaseModel], loc: tuple[Any, ...], error_type: str) -> str:
    """How to fix: the failing field's own documentation, or the list of allowed keys for an unknown one."""
    current: Any = model
    description = ""
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None:
            break
        if part not in fields:
            if error_type == "extra_forbidden":
                close = difflib.get_close_matches(str(part), list(fields), n=1)
                rename = f"did you mean {close[0]}? rename it, or remove it; " if close else "remove it; "
                return f"{rename}allowed keys here: {', '.join(sorted(fields))}"
            break
        info = fields[part]
        description = info.description or ""
        current = _model_in(info.annotation)
    if error_type == "value_error":
        return ""
    return description


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def spec_from_pulumi_config() -> PlatformSpec:
    """Load the spec inside a Pulumi program (real engine or mocks). Bad config becomes a RunError: no traceback."""
    import pulumi

    source = f"stacks/Pulumi.{pulumi.get_stack()}.yaml"
    raw = pulumi.Config(PROJECT).get_object("platform")
    region = pulumi.Config("aws").get("region")
    try:
        return parse_spec(raw, source, region)
    except SpecError as exc:
        raise pulumi.RunError(str(exc)) from None
