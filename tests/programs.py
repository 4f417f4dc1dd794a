"""Small Pulumi programs run under the recorder: the data components wired to throwaway roles, so that their
grants and renames can be checked on recorded plans like the shipped stacks.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

from mlstack.plan.recorder import Plan, run_program
from tests.plans import PROJECT

_GRANTS_PROGRAM = """
import pulumi

from components.environment import Environment
from components.governance import Guardrails, GuardrailsArgs
from components.iam import platform_role, pod_identity_trust
from components.keys import EncryptionKeys, EncryptionKeysArgs
from components.registry import Registry, RegistryArgs
from components.storage import ObjectStore, ObjectStoreArgs, model_artifact_prefix
from mlstack.spec.loader import spec_from_pulumi_config

spec = spec_from_pulumi_config()
env = Environment.from_spec(spec)
guardrails = Guardrails("guardrails", GuardrailsArgs(env=env, budget=spec.budgets))
keys = EncryptionKeys("keys", EncryptionKeysArgs(env=env))
store = ObjectStore(
    {store_name!r},
    ObjectStoreArgs(
        env=env,
        spec=spec.storage,
        data_key_arn=keys.data_key_arn,
        permission_boundary_arn=guardrails.permission_boundary_arn,
    ),
    pulumi.ResourceOptions(aliases=[pulumi.Alias(name=old) for old in {store_aliases!r}]),
)
registry = Registry(
    "registry",
    RegistryArgs(
        env=env,
        spec=spec.registry,
        registry_key_arn=keys.registry_key_arn,
        permission_boundary_arn=guardrails.permission_boundary_arn,
    ),
)


def role(suffix):
    return platform_role(
        guardrails,
        f"role-{{suffix}}",
        env=env,
        role_suffix=suffix,
        boundary_arn=guardrails.permission_boundary_arn,
        assume_role_policy=pod_identity_trust(env),
        description="test principal",
    )


trainer, server, ci = role("trainer"), role("server"), role("ci")
store.buckets["datasets"].grant_read(trainer)
store.buckets["artifacts"].grant_read(trainer, prefix="search/")
store.buckets["artifacts"].grant_write(trainer, prefix="search/")
store.buckets["models"].grant_write(trainer, prefix=model_artifact_prefix("search"))
store.buckets["models"].grant_read(server, prefix=model_artifact_prefix("search", "chat", "v3"))
registry.grant_pull(trainer)
registry.grant_pull(server)
registry.grant_push(ci)
registry.grant_push(trainer, repositories=["training"])
"""


def program_plan(stack: str, store_name: str = "store", store_aliases: tuple[str, ...] = ()) -> Plan:
    """The plan of the grants program for ``stack``'s spec, with the object store under ``store_name``."""
    return _program_plan(stack, store_name, store_aliases)


@cache
def _program_plan(stack: str, store_name: str, store_aliases: tuple[str, ...]) -> Plan:
    config, spec = PROJECT.load(stack)
    with tempfile.TemporaryDirectory() as folder:
        program = Path(folder) / "__main__.py"
        program.write_text(_GRANTS_PROGRAM.format(store_name=store_name, store_aliases=list(store_aliases)))
        return run_program(program, config, spec)


def _urn(parent_urn: str, type_: str, name: str) -> str:
    # The engine's URN: the parent's type chain (without the root Stack) prefixes the child's type.
    stack, project, parent_chain = parent_urn.split("::")[0:3]
    if not parent_chain.endswith("pulumi:pulumi:Stack"):
        type_ = f"{parent_chain}${type_}"
    return "::".join([stack, project, type_, name])


def answered_urns(plan: Plan, urn: str) -> set[str]:
    """Every URN the resource ``urn`` answers to: its own and its aliases, including the aliases it inherits
    from renamed parents the way the engine derives them (a child named '<parent>-x' follows its parent's
    old name). A resource in the old state is kept, not replaced, when one of these URNs is its URN.
    """
    try:
        resource = plan.get(urn)
    except KeyError:
        return {urn}  # the root stack
    parent_urns = answered_urns(plan, resource.parent)
    names_and_types = {(resource.name, resource.type)}
    for alias in resource.aliases:
        if isinstance(alias, str):
            return_urn = alias
            names_and_types.add((return_urn.rsplit("::", 1)[1], return_urn.split("::")[2].split("$")[-1]))
            continue
        spec = alias.get("spec", {})
        names_and_types.add((spec.get("name") or resource.name, spec.get("type") or resource.type))
    parent_name = resource.parent.rsplit("::", 1)[1]
    urns = set()
    for parent_urn in parent_urns:
        parent_alias_name = parent_urn.rsplit("::", 1)[1]
        for name, type_ in names_and_types:
            if name.startswith(parent_name):
                name = parent_alias_name + name[len(parent_name) :]
            urns.add(_urn(parent_urn, type_, name))
    return urns
