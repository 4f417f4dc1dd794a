"""Reading stack files and turning them into a validated PlatformSpec, with one readable error for bad input."""

from __future__ import annotations

import json
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
    try:
        spec = parse_spec(config.values.get(SPEC_KEY), config.source, region)
    except SpecError as exc:
        raise SpecError(config.source, problems + exc.problems) from None
    if problems:
        raise SpecError(config.source, problems)
    return config, spec


def _problems_from(exc: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
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
        problems.append(Problem(".".join(loc), message, _hint(PlatformSpec, error["loc"], error["type"])))
    return problems


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
                return f"remove it; allowed keys here: {', '.join(sorted(fields))}"
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
