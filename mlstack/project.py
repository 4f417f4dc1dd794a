"""Where the Pulumi project lives: its program, its stack files and its build folder."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlstack.spec import PlatformSpec
from mlstack.spec.loader import PROJECT, SpecError, StackConfig, load_spec


class ProjectNotFound(Exception):
    """No mlstack Pulumi.yaml above the working directory."""


@dataclass(frozen=True)
class Project:
    root: Path

    @property
    def program(self) -> Path:
        return self.root / "__main__.py"

    @property
    def account_program(self) -> Path:
        """The account foundation's program (``account/``), planned from the same stack files."""
        return self.root / "account" / "__main__.py"

    @property
    def stacks_dir(self) -> Path:
        document = yaml.safe_load((self.root / "Pulumi.yaml").read_text(encoding="utf-8")) or {}
        return self.root / str(document.get("stackConfigDir", "."))

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    def stack_names(self) -> list[str]:
        return sorted(
            p.name.removeprefix("Pulumi.").removesuffix(".yaml")
            for p in self.stacks_dir.glob("Pulumi.*.yaml")
        )

    def stack_file(self, stack: str) -> Path:
        return self.stacks_dir / f"Pulumi.{stack}.yaml"

    def load(self, stack: str) -> tuple[StackConfig, PlatformSpec]:
        """Read and validate a stack file; errors and the plan name the file relative to the project."""
        path = self.stack_file(stack)
        try:
            config, spec = load_spec(path)
        except SpecError as exc:
            exc.source = self.relative(path)
            raise
        return StackConfig(source=self.relative(path), stack=config.stack, values=config.values), spec

    def relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def find_project(start: Path | None = None) -> Project:
    """The nearest directory at or above ``start`` whose Pulumi.yaml names the mlstack project."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        manifest = candidate / "Pulumi.yaml"
        if manifest.is_file():
            document = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
            if document.get("name") == PROJECT:
                return Project(candidate)
    raise ProjectNotFound(
        f"no Pulumi.yaml of the '{PROJECT}' project in {here} or above; run mlstack from inside the project "
        "or pass --project-dir"
    )


def unknown_stack(project: Project, env: str) -> str:
    """The message for a stack name with no stack file: the file it looked for, the known names, and the
    closest one ('prd' -> prod, 'Dev' -> dev)."""
    known = project.stack_names()
    close = difflib.get_close_matches(env.lower(), known, n=1, cutoff=0.6)
    guess = f"; did you mean {close[0]}?" if close else ""
    where = project.relative(project.stack_file(env))
    return f"no stack file {where}; known environments: {', '.join(known)}{guess}"
