"""Another team's Pulumi program, independent of mlstack: plain pulumi-aws and pulumi-kubernetes resources,
each one insecure in a way the mlstack policy pack must catch (tests/test_pack_outside_mlstack.py).

It imports nothing from mlstack and has no ``mlstack:platform`` config: rules that depend on mlstack's naming
or environment spec must stay silent on it.
"""

import json

import pulumi_aws as aws
import pulumi_kubernetes as k8s

bucket = aws.s3.Bucket("reports", bucket="team-reports", force_destroy=True)
aws.s3.BucketPolicy(
    "reports-policy",
    bucket=bucket.id,
    policy=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::team-reports/*",
                }
            ],
        }
    ),
)
aws.kms.Key("reports-key", enable_key_rotation=False)
aws.ec2.SecurityGroup(
    "open-ssh",
    ingress=[
        aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=22, to_port=22, cidr_blocks=["0.0.0.0/0"])
    ],
)
aws.rds.Instance(
    "orders-db",
    engine="postgres",
    instance_class="db.t4g.micro",
    allocated_storage=20,
    username="app",
    password="not-a-secret",
    publicly_accessible=True,
    skip_final_snapshot=True,
)
aws.sqs.Queue("jobs", sqs_managed_sse_enabled=False)
aws.iam.Policy(
    "deployer",
    policy=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["iam:PassRole", "ec2:RunInstances"], "Resource": "*"}
            ],
        }
    ),
)
k8s.apps.v1.Deployment(
    "web",
    spec={
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "hostNetwork": True,
                "containers": [
                    {"name": "web", "image": "nginx:latest", "securityContext": {"privileged": True}}
                ],
            },
        },
    },
)
k8s.core.v1.Namespace("sandbox", metadata={"name": "sandbox"})
