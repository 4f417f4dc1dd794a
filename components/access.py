"""How people reach the private cluster: a Session Manager host in a private subnet, no inbound ports.

``aws ssm start-session --document-name AWS-StartPortForwardingSessionToRemoteHost`` opens a tunnel from a
laptop through the host to the private API endpoint (Systems Manager user guide, session-manager-working-with-
sessions-start.html, "Port forwarding to remote hosts"). ``kubectl`` then talks to ``https://localhost:<port>``
with ``tls-server-name`` set to the endpoint's host name, and the UIs come through ``kubectl port-forward``
over the same API. The host needs no public address and admits nothing: the SSM agent dials out.

Why this rather than a Client VPN or an internal ALB with SSO, with the cost of each: docs/components/access.md.
The host costs about $3.70 a month (a t4g.nano and its 8 GiB volume; `mlstack cost`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.cluster import encrypted_root_volume, imdsv2_only
from components.environment import Environment
from components.iam import platform_role, policy_document, service_trust
from components.network import https_egress_only_security_group
from components.options import child
from mlstack.spec.access import AccessHostSpec

# The AWS-owned session document for port forwarding to a host the managed node can reach (Systems Manager user
# guide, session-manager-working-with-sessions-start.html#sessions-remote-port-forwarding).
PORT_FORWARD_DOCUMENT = "AWS-StartPortForwardingSessionToRemoteHost"
# Amazon Linux 2023, arm64, standard edition (the SSM agent is preinstalled; the minimal edition has none). The
# launch template resolves it when the instance is created (EC2 user guide, "Use a Systems Manager parameter
# instead of an AMI ID": resolve:ssm:<parameter>); public parameter path per aws ssm get-parameters-by-path
# --path /aws/service/ami-amazon-linux-latest.
AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
# Local port of the API tunnel in the documented commands and the kubeconfig variant.
LOCAL_API_PORT = 8443
_MANAGED = "arn:aws:iam::aws:policy/"


@dataclass(frozen=True)
class AccessHostArgs:
    """Inputs of the AccessHost component."""

    env: Environment
    spec: AccessHostSpec
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    boundary_arn: pulumi.Input[str]


class AccessHost(pulumi.ComponentResource):
    """A Session Manager managed node that relays port-forwarding sessions to the private cluster endpoint.

    Outputs: ``instance_id``, ``instance_arn``, ``security_group_id``, ``role_arn``. Wire people to it with
    :meth:`grant_session` and the cluster to it with ``Cluster.allow_api_from``.
    """

    instance_id: pulumi.Output[str]
    instance_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AccessHostArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:access:AccessHost", name, None, opts)
        self._name = name
        self._env = env = args.env
        spec = args.spec

        # Outbound HTTPS only: the Systems Manager endpoints (agent channels) and the cluster API it forwards to.
        self.security_group = https_egress_only_security_group(
            self,
            name,
            env=env,
            purpose="access-host",
            vpc_id=args.vpc_id,
            description="mlstack access host: no inbound at all; the SSM agent dials out over HTTPS",
            egress_description="HTTPS to Systems Manager and to the cluster API",
        )

        role = platform_role(
            self,
            f"{name}-role",
            env=env,
            role_suffix="access-host",
            boundary_arn=args.boundary_arn,
            assume_role_policy=service_trust("ec2.amazonaws.com"),
            description="Access host: Session Manager agent only (AmazonSSMManagedInstanceCore)",
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-ssm-core",
            role=role.name,
            policy_arn=f"{_MANAGED}AmazonSSMManagedInstanceCore",
            opts=child(self),
        )
        profile = aws.iam.InstanceProfile(
            f"{name}-profile", name=env.resource_name("access-host"), role=role.name, opts=child(self)
        )
        template = aws.ec2.LaunchTemplate(
            f"{name}-template",
            name=env.resource_name("access-host"),
            description="Access host: IMDSv2 only with hop limit 1, encrypted gp3 root, no public IP, no key",
            image_id=f"resolve:ssm:{AMI_PARAMETER}",
            instance_type=spec.instance_type,
            metadata_options=imdsv2_only(),
            block_device_mappings=[encrypted_root_volume(spec.root_volume_gb)],
            network_interfaces=[
                aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                    associate_public_ip_address="false",
                    security_groups=[self.security_group.id],
                    subnet_id=pulumi.Output.from_input(args.private_subnet_ids).apply(lambda ids: ids[0]),
                    delete_on_termination="true",
                )
            ],
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type=kind, tags={**env.tags, "Name": env.resource_name("access-host")}
                )
                for kind in ("instance", "volume")
            ],
            opts=child(self),
        )
        self.instance = aws.ec2.Instance(
            f"{name}-instance",
            launch_template=aws.ec2.InstanceLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            tags={"Name": env.resource_name("access-host")},
            opts=child(self),
        )

        self.instance_id = self.instance.id
        self.instance_arn = self.instance.arn
        self.security_group_id = self.security_group.id
        self.role_arn = role.arn
        self.register_outputs(
            {
                "instance_id": self.instance_id,
                "instance_arn": self.instance_arn,
                "security_group_id": self.security_group_id,
                "role_arn": self.role_arn,
            }
        )

    def grant_session(self, logical_name: str, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let ``role`` open port-forwarding sessions through this host, and nothing else in Session Manager:
        no shell (the document access check makes a start-session without ``--document-name`` fail), no other
        instance, no other document."""
        return aws.iam.RolePolicy(
            logical_name,
            role=role.id,
            policy=policy_document(session_statements(self._env, self.instance_arn)),
            opts=child(self),
        )


def session_statements(env: Environment, instance_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """IAM statements of a person who tunnels through the access host.

    - ``ssm:StartSession`` on the instance and on the port-forwarding document only, with
      ``ssm:SessionDocumentAccessCheck`` so that the default shell document is refused (Systems Manager user
      guide, getting-started-specify-session-document.html, "Enforce a session document permission check").
    - ``ssm:TerminateSession`` and ``ssm:ResumeSession`` on this account's sessions in the region: the plugin
      ends its session on exit. The documented ``session/${aws:username}-*`` scoping does not apply to
      Identity Center users (their sessions are not named after an IAM user), so it is the region's sessions.
    """
    return [
        {
            "Sid": "PortForwardThroughTheAccessHost",
            "Effect": "Allow",
            "Action": "ssm:StartSession",
            "Resource": [
                instance_arn,
                f"arn:aws:ssm:{env.region}::document/{PORT_FORWARD_DOCUMENT}",
            ],
            "Condition": {"BoolIfExists": {"ssm:SessionDocumentAccessCheck": "true"}},
        },
        {
            "Sid": "EndOwnTunnel",
            "Effect": "Allow",
            "Action": ["ssm:TerminateSession", "ssm:ResumeSession"],
            "Resource": env.arn("ssm", "session/*"),
        },
    ]
