"""Pulumi entry point: load the environment spec from the stack config, build the platform, export outputs."""

import pulumi

from components.platform import Platform
from mlstack.gc_thresholds import raise_thresholds, skip_final_collection
from mlstack.spec.loader import spec_from_pulumi_config

# The engine's language host runs this file in a process of its own: tune its collector for the run.
raise_thresholds()
skip_final_collection()
spec = spec_from_pulumi_config()
platform = Platform(spec.environment, spec)

pulumi.export("environment", spec.environment)
pulumi.export("tier", spec.tier.value)
pulumi.export("permission_boundary_arn", platform.permission_boundary_arn)
pulumi.export("data_key_arn", platform.data_key_arn)
# Per team, the ~/.metaflowconfig/config.json of its data scientists (no secrets): see
# docs/guides/first-metaflow-flow.md.
pulumi.export("metaflow_config", platform.metaflow_config)
