"""Pulumi entry point: load the environment spec from the stack config, build the platform, export outputs."""

import pulumi

from components.platform import Platform
from mlstack.gc_thresholds import raise_thresholds, skip_final_collection
from mlstack.outputs import OUTPUT_NAMES
from mlstack.spec.loader import spec_from_pulumi_config

# The engine's language host runs this file in a process of its own: tune its collector for the run.
raise_thresholds()
skip_final_collection()
spec = spec_from_pulumi_config()
platform = Platform(spec.environment, spec)

# Every output is declared once, with its type and purpose, in mlstack/outputs.py (docs/outputs.md).
for name in OUTPUT_NAMES:
    pulumi.export(name, platform.stack_outputs[name])
