"""Entry point the Pulumi CLI runs for `pulumi preview --policy-pack policies`: builds the pack, nothing else."""

from pulumi_policy import PolicyPack

from policies.catalog import ALL_POLICIES, PACK_ENFORCEMENT_LEVEL, PACK_NAME

PolicyPack(name=PACK_NAME, policies=ALL_POLICIES, enforcement_level=PACK_ENFORCEMENT_LEVEL)
