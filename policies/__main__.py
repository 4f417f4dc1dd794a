"""Entry point the Pulumi CLI runs for `pulumi preview --policy-pack policies`: builds the pack, nothing else.

The policies honour policies/waivers.yaml (see policies/waiving.py); a broken waiver file stops the pack.
"""

from pulumi_policy import PolicyPack

from policies.catalog import ALL_RULES, PACK_ENFORCEMENT_LEVEL, PACK_NAME
from policies.waiving import engine_policies

PolicyPack(name=PACK_NAME, policies=engine_policies(ALL_RULES), enforcement_level=PACK_ENFORCEMENT_LEVEL)
