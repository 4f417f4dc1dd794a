"""Pulumi entry point of the account foundation (docs/runbooks/first-deploy.md): one stack per environment, named
like the platform's stack, built from the same stack file (``../stacks/Pulumi.<stack>.yaml``) so the two can
never disagree on the account, region, environment or repository."""

import sys
from pathlib import Path

import pulumi

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the platform's packages, when mlstack is not installed into the venv

from components.account import AccountFoundation, AccountFoundationArgs  # noqa: E402
from mlstack.project import Project  # noqa: E402
from mlstack.spec.loader import SpecError, spec_from_pulumi_config  # noqa: E402

if pulumi.Config("mlstack").get("platform") is not None:
    # Run with the platform's stack file as config (offline plans; `pulumi up --config-file`): read it as the
    # platform program does.
    spec = spec_from_pulumi_config()
else:
    try:
        _, spec = Project(ROOT).load(pulumi.get_stack())
    except SpecError as exc:
        raise pulumi.RunError(str(exc)) from None
if spec.deployment is None:
    raise pulumi.RunError(
        f"stacks/Pulumi.{pulumi.get_stack()}.yaml: the account foundation needs a `deployment` section "
        "(github_repository at least): see docs/runbooks/first-deploy.md"
    )
foundation = AccountFoundation(spec.environment, AccountFoundationArgs.from_spec(spec))

pulumi.export("oidc_provider_arn", foundation.oidc_provider_arn)
pulumi.export("deploy_role_arn", foundation.deploy_role_arn)
pulumi.export("preview_role_arn", foundation.preview_role_arn)
pulumi.export("audit_role_arn", foundation.audit_role_arn)
pulumi.export("pipeline_boundary_arn", foundation.boundary_arn)
pulumi.export("permission_set_arns", foundation.permission_set_arns)
