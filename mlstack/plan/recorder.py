"""Run the real Pulumi program offline and record every resource registration it makes.

The program (``__main__.py``) runs exactly as the engine would run it: inside a root Stack, with the stack
file's config loaded as Pulumi loads it. Only the monitor is replaced, by one that records each
``RegisterResourceRequest`` and answers with :class:`~mlstack.plan.mocks.PlatformMocks`.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import runpy
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks, settings
from pulumi.runtime import resource as runtime_resource
from pulumi.runtime import stack as runtime_stack
from pulumi.runtime.proto import source_pb2

from mlstack import __version__
from mlstack.gc_thresholds import raised_thresholds
from mlstack.plan.mocks import PlatformMocks
from mlstack.spec import PlatformSpec
from mlstack.spec.loader import PROJECT, SpecError, StackConfig

PLAN_FORMAT_VERSION = 1
# The account foundation's Pulumi project (account/Pulumi.yaml).
ACCOUNT_PROJECT = "mlstack-account"
SETTLE_STALL_SECONDS = 10.0
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass
class RecordedResource:
    """One registration as the engine received it. Inputs are in wire format: camelCase keys, numbers as floats."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    id: str
    inputs: dict[str, Any]
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    ignore_changes: list[str]
    aliases: list[Any]
    provider: str
    outputs: dict[str, Any] = field(default_factory=dict)
    registered_outputs: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "id": self.id,
            "provider": self.provider,
            "inputs": self.inputs,
            "dependencies": self.dependencies,
            "propertyDependencies": self.property_dependencies,
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
            "deleteBeforeReplace": self.delete_before_replace,
            "ignoreChanges": self.ignore_changes,
            "aliases": self.aliases,
            "outputs": self.outputs,
            "registeredOutputs": self.registered_outputs,
        }


class RecordingMonitor(mocks.MockMonitor):
    """A mock monitor that keeps every registration, with URNs formed the way the real engine forms them."""

    def __init__(self, platform_mocks: mocks.Mocks):
        super().__init__(platform_mocks)
        self.recorded: dict[str, RecordedResource] = {}
        self.resource_outputs: dict[str, dict[str, Any]] = {}

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The engine prefixes a child's type with its parent's full type chain, leaving out the root Stack.
        if parent:
            parent_chain = parent.split("::")[2]
            if parent_chain != STACK_TYPE:
                type_ = f"{parent_chain}${type_}"
        return "urn:pulumi:" + "::".join([settings.get_stack(), settings.get_project(), type_, name])

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if urn in self.recorded:
            raise ValueError(f"duplicate resource URN {urn}: two resources share a type and name")
        response = super().RegisterResource(request)
        outputs = json_format.MessageToDict(response.object) if request.type != STACK_TYPE else {}
        self.recorded[urn] = RecordedResource(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=bool(request.custom),
            id=response.id,
            inputs=json_format.MessageToDict(request.object),
            dependencies=sorted(set(request.dependencies)),
            property_dependencies={
                key: sorted(set(value.urns)) for key, value in sorted(request.propertyDependencies.items())
            },
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            delete_before_replace=bool(request.deleteBeforeReplace),
            ignore_changes=sorted(request.ignoreChanges),
            aliases=[json_format.MessageToDict(alias) for alias in request.aliases]
            + sorted(request.aliasURNs),
            provider=request.provider,
            outputs={key: outputs[key] for key in ("arn",) if key in outputs},
        )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        self.resource_outputs[request.urn] = json_format.MessageToDict(request.outputs)
        return super().RegisterResourceOutputs(request)


@dataclass
class Plan:
    """Everything one stack would register, in a stable documented shape (see docs/plan-format.md)."""

    project: str
    stack: str
    source: str
    resources: list[RecordedResource]
    outputs: dict[str, Any]

    def by_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def get(self, urn: str) -> RecordedResource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise KeyError(urn)

    def children_of(self, urn: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.parent == urn]

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for resource in self.resources:
            counts[resource.type] = counts.get(resource.type, 0) + 1
        return {
            "version": PLAN_FORMAT_VERSION,
            "generator": f"mlstack {__version__}",
            "project": self.project,
            "stack": self.stack,
            "source": self.source,
            "summary": {"resources": len(self.resources), "byType": dict(sorted(counts.items()))},
            "outputs": self.outputs,
            "resources": [r.to_json() for r in self.resources],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"


async def _settle() -> None:
    """Wait until every task the program started has finished, a whole generation at a time.

    The SDK's own wait after the program returns takes its outputs one completion at a time, re-arming a
    callback on every pending output each time: quadratic in the number of outputs, most of a plan's run
    time. Waiting for all of them at once costs one callback per task per generation, and leaves the SDK's
    wait nothing to do. A task that waits for something only the end of the program brings (the SDK
    finishes the root Stack after this returns) would never finish here: when nothing at all finishes for
    ``SETTLE_STALL_SECONDS`` the rest is left to the SDK's own wait, which is slower but always correct.
    """
    this = asyncio.current_task()
    while pending := [task for task in asyncio.all_tasks() if task is not this and not task.done()]:
        done, _ = await asyncio.wait(pending, timeout=SETTLE_STALL_SECONDS)
        if not done:
            return


@dataclass
class ProgramError(SpecError):
    """The program failed on a stack file that passed validation: one message instead of a traceback.

    A SpecError, so every command that reports bad stack files reports this too. ``cause`` is the exception's
    one-line message and ``location`` the innermost frame that raised it; ``bug`` is False for a
    ``pulumi.RunError``, which by Pulumi's convention already is a message meant for the user.
    """

    stack: str = ""
    cause: str = ""
    location: str = ""
    bug: bool = True

    def __str__(self) -> str:
        if not self.bug:
            return self.cause
        where = f" (raised at {self.location})" if self.location else ""
        return (
            f"{self.source}: the program failed while planning stack '{self.stack}': {self.cause}{where}\n"
            "  this is a bug in mlstack or a stack file the spec should have refused: please report it"
        )


def run_program(program: Path, config: StackConfig, spec: PlatformSpec, project: str = PROJECT) -> Plan:
    """Run ``program`` for one stack under the recording monitor and return its plan.

    ``project`` is the Pulumi project the program belongs to: the platform's, or the account foundation's
    (``account/``, :data:`ACCOUNT_PROJECT`), which is planned from the same stack file.

    Each run happens in a fresh context, so several stacks can be planned in one process without the
    Pulumi runtime's global state leaking from one to the next. An exception the program raises becomes a
    :class:`ProgramError`.
    """
    try:
        with raised_thresholds(), _without_stack_traces():
            return contextvars.Context().run(_run_isolated, program, config, spec, project)
    except SpecError:
        raise
    except pulumi.RunError as exc:
        raise ProgramError(config.source, stack=config.stack, cause=str(exc), bug=False) from exc
    except Exception as exc:
        raise ProgramError(
            config.source, stack=config.stack, cause=_one_line(exc), location=_raised_at(exc, program.parent)
        ) from exc


def _empty_stack_trace() -> source_pb2.StackTrace:
    return source_pb2.StackTrace()


@contextmanager
def _without_stack_traces() -> Iterator[None]:
    """Spare the SDK the stack trace it sends with every registration, for the duration of an offline run.

    pulumi 3.272.0 (``pulumi/runtime/resource.py``: ``register_resource`` calls ``_get_stack_trace``) walks the
    whole Python stack for each resource, reads the source line of every frame and turns each file name into
    a URI, so the engine can show where a resource was declared (``RegisterResourceRequest.stackTrace`` and
    ``sourcePosition``). Under the recording monitor nobody reads them: the plan records neither, and the
    mocks never see them. That walk was about a sixth of prod's plan CPU time once the SDK modules are
    imported, a quarter at 50 teams (docs/benchmarks.md). An empty trace is what the SDK itself sends when
    it finds no user frame. The SDK's function is put back when the run ends, and a version of the SDK
    without it is simply left alone; a real ``pulumi up`` never comes through here.
    """
    original = getattr(runtime_resource, "_get_stack_trace", None)
    if original is None:
        yield
        return
    runtime_resource._get_stack_trace = _empty_stack_trace  # type: ignore[attr-defined]
    try:
        yield
    finally:
        runtime_resource._get_stack_trace = original  # type: ignore[attr-defined]


def _one_line(exc: BaseException) -> str:
    lines = (str(exc) or "").strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _raised_at(exc: BaseException, root: Path) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    path = Path(frame.filename)
    return f"{path.relative_to(root) if path.is_relative_to(root) else path}:{frame.lineno}"


def _run_isolated(program: Path, config: StackConfig, spec: PlatformSpec, project: str = PROJECT) -> Plan:
    monitor = RecordingMonitor(PlatformMocks(spec.account_id, spec.region, config.stack))
    pulumi.runtime.set_all_config(config.wire_config(), secret_keys=[])
    settings.configure(
        mocks.MockSettings(
            monitor=monitor,
            monitor_features=set(),
            engine=mocks.MockEngine(None),
            project=project,
            stack=config.stack,
            dry_run=False,
            organization="organization",
            callbacks=None,
            root_directory=str(program.parent),
        )
    )
    settings.set_root_resource(None)  # type: ignore[arg-type]

    async def program_body() -> None:
        runpy.run_path(str(program), run_name="__main__")
        await _settle()

    # Like the language host: one loop for the whole program, installed as the thread's loop because the
    # SDK's synchronous helpers look it up, and closed afterwards so that no loop outlives the run.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(runtime_stack.run_in_stack(program_body))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    stack_urn = f"urn:pulumi:{config.stack}::{project}::{STACK_TYPE}::{project}-{config.stack}"
    resources = sorted((r for r in monitor.recorded.values() if r.type != STACK_TYPE), key=lambda r: r.urn)
    for resource in resources:
        if not resource.custom:
            # A component's outputs are what it passed to register_outputs; absent means it never called it.
            resource.outputs = monitor.resource_outputs.get(resource.urn, {})
            resource.registered_outputs = resource.urn in monitor.resource_outputs
    return Plan(
        project=project,
        stack=config.stack,
        source=config.source,
        resources=resources,
        outputs=monitor.resource_outputs.get(stack_urn, {}),
    )
