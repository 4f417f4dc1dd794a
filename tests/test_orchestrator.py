"""Orchestrator on the recorded plans: Argo's security-relevant values, the metadata database's defaults, the
team workflow identities, and the metaflow_config output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.orchestrator import ARTIFACT_KEY_FORMAT, WORKFLOW_SERVICE_ACCOUNT
from mlstack.plan.recorder import Plan, RecordedResource
from mlstack.spec import PlatformSpec, Tier
from tests.plans import PROJECT, policy_json


def _spec(plan: Plan) -> PlatformSpec:
    return PROJECT.load(plan.stack)[1]


def _one(plan: Plan, type_: str, name: str) -> RecordedResource:
    (found,) = [r for r in plan.by_type(type_) if r.name == name]
    return found


def _argo_values(plan: Plan) -> dict[str, Any]:
    release = _one(plan, "kubernetes:helm.sh/v3:Release", f"{plan.stack}-orchestrator-argo")
    return release.inputs["values"]


def _artifacts_bucket(plan: Plan) -> RecordedResource:
    (bucket,) = [
        b for b in plan.by_type("aws:s3/bucket:Bucket") if b.name == f"{plan.stack}-storage-artifacts-bucket"
    ]
    return bucket


def test_argo_chart_is_pinned_with_explicit_values(stack_plan: Plan) -> None:
    spec = _spec(stack_plan).orchestrator
    release = _one(stack_plan, "kubernetes:helm.sh/v3:Release", f"{stack_plan.stack}-orchestrator-argo")
    assert release.inputs["chart"] == "argo-workflows"
    assert release.inputs["version"] == spec.argo_chart_version
    assert release.inputs["repositoryOpts"]["repo"] == "https://argoproj.github.io/argo-helm"
    assert release.inputs["namespace"] == spec.argo_namespace
    assert release.inputs["values"], "the chart's defaults are never taken wholesale"


def test_argo_server_never_uses_server_auth_and_stays_internal(stack_plan: Plan) -> None:
    server = _argo_values(stack_plan)["server"]
    assert server["authModes"] == [_spec(stack_plan).orchestrator.server_auth_mode]
    assert "server" not in server["authModes"]
    assert server["serviceType"] == "ClusterIP"
    assert server["ingress"]["enabled"] is False


@pytest.mark.parametrize("part", ["controller", "server"])
def test_argo_pods_run_non_root_with_resources(stack_plan: Plan, part: str) -> None:
    values = _argo_values(stack_plan)[part]
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    assert values["podSecurityContext"]["runAsUser"] > 0
    container = values["securityContext"]
    assert container["runAsNonRoot"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(values["resources"]["requests"])
    assert "memory" in values["resources"]["limits"]


def test_artifacts_go_to_the_artifacts_bucket_without_static_keys(stack_plan: Plan) -> None:
    values = _argo_values(stack_plan)
    s3 = values["artifactRepository"]["s3"]
    assert s3["bucket"] == _artifacts_bucket(stack_plan).inputs["bucket"]
    assert s3["useSDKCreds"] is True and values["useStaticCredentials"] is False
    assert not {"accessKeySecret", "secretKeySecret", "sessionTokenSecret"} & set(s3)
    assert s3["keyFormat"] == ARTIFACT_KEY_FORMAT and s3["keyFormat"].startswith("{{workflow.namespace}}/")
    assert s3["insecure"] is False


def test_metadata_database_defaults(stack_plan: Plan) -> None:
    spec = _spec(stack_plan)
    db = _one(stack_plan, "aws:rds/instance:Instance", f"{stack_plan.stack}-orchestrator-metadata-db")
    inputs = db.inputs
    data_key = _one(stack_plan, "aws:kms/key:Key", f"{stack_plan.stack}-keys-data")
    assert inputs["storageEncrypted"] is True and inputs["kmsKeyId"] == data_key.outputs["arn"]
    assert inputs["manageMasterUserPassword"] is True
    assert inputs["masterUserSecretKmsKeyId"] == data_key.outputs["arn"]
    assert not {"password", "masterPassword"} & set(inputs)
    assert inputs["publiclyAccessible"] is False
    assert inputs["backupRetentionPeriod"] == spec.orchestrator.backup_retention_days
    assert inputs["instanceClass"] == spec.orchestrator.db_instance_class
    assert inputs["multiAz"] is spec.orchestrator.db_multi_az
    hardened = spec.tier.hardened
    assert inputs["deletionProtection"] is hardened
    assert inputs["skipFinalSnapshot"] is (not hardened)
    assert ("finalSnapshotIdentifier" in inputs) is hardened
    assert db.protect is hardened and db.retain_on_delete is hardened
    if spec.tier is Tier.DEV:
        assert (inputs["instanceClass"], inputs["multiAz"]) == ("db.t4g.micro", False)
    if spec.tier is Tier.PROD:
        assert inputs["multiAz"] is True and inputs["backupRetentionPeriod"] >= 7


def test_metadata_database_is_reachable_only_from_the_cluster(stack_plan: Plan) -> None:
    stack = stack_plan.stack
    group = _one(stack_plan, "aws:ec2/securityGroup:SecurityGroup", f"{stack}-orchestrator-db-sg")
    assert "ingress" not in group.inputs
    rules = [
        r
        for r in stack_plan.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == group.id
    ]
    (rule,) = rules
    cluster = _one(stack_plan, "aws:eks/cluster:Cluster", f"{stack}-cluster-eks")
    assert rule.property_dependencies["referencedSecurityGroupId"] == [cluster.urn]
    assert not {"cidrIpv4", "cidrIpv6", "prefixListId"} & set(rule.inputs)
    assert (rule.inputs["fromPort"], rule.inputs["toPort"]) == (5432, 5432)
    subnets = _one(stack_plan, "aws:rds/subnetGroup:SubnetGroup", f"{stack}-orchestrator-db-subnets")
    private = {
        s.id
        for s in stack_plan.by_type("aws:ec2/subnet:Subnet")
        if s.inputs.get("mapPublicIpOnLaunch") is not True
    }
    assert set(subnets.inputs["subnetIds"]) <= private


def _metaflow_sets(plan: Plan) -> list[RecordedResource]:
    namespace = _spec(plan).orchestrator.metaflow_namespace
    return [
        d
        for d in plan.by_type("kubernetes:apps/v1:StatefulSet")
        if d.inputs["metadata"]["namespace"] == namespace
    ]


def _pod(workload: RecordedResource) -> dict[str, Any]:
    return workload.inputs["spec"]["template"]["spec"]


def test_metaflow_services_are_internal_non_root_and_passwordless(stack_plan: Plan) -> None:
    namespace = _spec(stack_plan).orchestrator.metaflow_namespace
    services = [
        s
        for s in stack_plan.by_type("kubernetes:core/v1:Service")
        if s.inputs["metadata"]["namespace"] == namespace
    ]
    assert services and all(s.inputs["spec"]["type"] == "ClusterIP" for s in services)
    sets = _metaflow_sets(stack_plan)
    assert not [
        d
        for d in stack_plan.by_type("kubernetes:apps/v1:Deployment")
        if d.inputs["metadata"]["namespace"] == namespace
    ]
    per_team = 2 if _spec(stack_plan).orchestrator.metaflow_ui else 1
    assert len(sets) == per_team * len(_spec(stack_plan).teams)
    for workload in sets:
        pod = _pod(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            if container["name"] == "migrate-db":
                # The image keeps the migration under /root (0700): it runs as root with nothing else.
                assert context["runAsUser"] == 0 and context["capabilities"] == {"drop": ["ALL"]}
                assert context["readOnlyRootFilesystem"] is True
            else:
                assert context["runAsNonRoot"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            names = {e["name"] for e in container.get("env", [])}
            assert "MF_METADATA_DB_PSWD" not in names, (
                "the password is read at start-up, never set in the spec"
            )
        (credentials,) = [v for v in pod["volumes"] if v["name"] == "db-credentials"]
        assert credentials["emptyDir"]["medium"] == "Memory"


def test_each_team_has_its_own_metaflow_service_schema_and_identity(stack_plan: Plan) -> None:
    """One metadata service (and UI backend) per team, each on its own schema and service account: a shared,
    unauthenticated service let every team read and rewrite every other team's runs (rt-data S3)."""
    spec = _spec(stack_plan)
    sets = {d.inputs["metadata"]["name"]: d for d in _metaflow_sets(stack_plan)}
    maps = {
        c.inputs["metadata"]["name"]: c
        for c in stack_plan.by_type("kubernetes:core/v1:ConfigMap")
        if c.inputs["metadata"]["namespace"] == spec.orchestrator.metaflow_namespace
    }
    apps = ["metaflow-metadata"] + (["metaflow-ui-backend"] if spec.orchestrator.metaflow_ui else [])
    for team in spec.teams:
        schema = "metaflow_" + team.name.replace("-", "_")
        service_file = maps[f"metaflow-db-{team.name}"].inputs["data"]["pg_service.conf"]
        assert service_file == f"[metaflow]\noptions=-c search_path={schema}\n"
        for app in apps:
            workload = sets[f"{app}-{team.name}"]
            pod = _pod(workload)
            assert pod["serviceAccountName"] == f"metaflow-{team.name}"
            assert workload.inputs["spec"]["template"]["metadata"]["labels"]["mlstack.dev/team"] == team.name
            (files,) = [v for v in pod["volumes"] if v["name"] == "db-files"]
            assert files["configMap"]["name"] == f"metaflow-db-{team.name}"
            for container in pod["containers"] + pod.get("initContainers", []):
                env = {e["name"]: e.get("value") for e in container["env"]}
                assert env["DB_SCHEMA_NAME"] == schema
                assert env["PGSERVICE"] == "metaflow"
                assert env["PGSERVICEFILE"] == "/etc/metaflow-db/pg_service.conf"
        association = [
            a
            for a in stack_plan.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
            if a.inputs["serviceAccount"] == f"metaflow-{team.name}"
        ]
        assert (
            len(association) == 1
            and association[0].inputs["namespace"] == spec.orchestrator.metaflow_namespace
        )


def test_metaflow_services_admit_only_their_own_team(stack_plan: Plan) -> None:
    """Once the CNI enforces NetworkPolicies, a team's pods reach only their own team's Metaflow pods."""
    spec = _spec(stack_plan)
    policies = [
        p
        for p in stack_plan.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if p.inputs["metadata"]["namespace"] == spec.orchestrator.metaflow_namespace
    ]
    assert len(policies) == len(spec.teams)
    sets = _metaflow_sets(stack_plan)
    for policy in policies:
        selector = policy.inputs["spec"]["podSelector"]["matchLabels"]
        team = selector["mlstack.dev/team"]
        (rule,) = policy.inputs["spec"]["ingress"]
        (source,) = rule["from"]
        (expression,) = source["namespaceSelector"]["matchExpressions"]
        assert expression == {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [team]}
        ports = {p["port"] for p in rule["ports"]}
        assert ports == ({8080, 8083} if spec.orchestrator.metaflow_ui else {8080})
        selected = [
            d for d in sets if selector.items() <= d.inputs["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert selected and all(d.inputs["metadata"]["labels"]["mlstack.dev/team"] == team for d in selected)


def test_only_a_teams_group_can_port_forward_to_its_metaflow_pods(stack_plan: Plan) -> None:
    spec = _spec(stack_plan)
    ns = spec.orchestrator.metaflow_namespace
    roles = {
        r.inputs["metadata"]["name"]: r
        for r in stack_plan.by_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
        if r.inputs["metadata"]["namespace"] == ns
    }
    bindings = {
        b.inputs["metadata"]["name"]: b
        for b in stack_plan.by_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
        if b.inputs["metadata"]["namespace"] == ns
    }
    replicas = spec.orchestrator.metadata_service_replicas
    for team in spec.teams:
        name = f"metaflow-port-forward-{team.name}"
        rules = roles[name].inputs["rules"]
        pods = [f"metaflow-metadata-{team.name}-{i}" for i in range(replicas)]
        if spec.orchestrator.metaflow_ui:
            pods += [f"metaflow-ui-backend-{team.name}-{i}" for i in range(replicas)]
        assert rules == [
            {"apiGroups": [""], "resources": ["pods"], "resourceNames": pods, "verbs": ["get"]},
            {
                "apiGroups": [""],
                "resources": ["pods/portforward"],
                "resourceNames": pods,
                "verbs": ["create"],
            },
        ]
        assert bindings[name].inputs["subjects"] == [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": team.group}
        ]


def test_metaflow_pods_reread_the_password_after_rotation(stack_plan: Plan) -> None:
    """RDS rotates the master password every 7 days; a pod that read it once broke then (rt-data R1). Each
    service container reads it on every start, and its liveness probe restarts it when the password stops
    logging in."""
    for workload in _metaflow_sets(stack_plan):
        for container in _pod(workload)["containers"]:
            assert container["args"][0].startswith(
                "/opt/latest/bin/python3 /etc/metaflow-db/fetch_credentials.py && "
            )
            probe = container["livenessProbe"]
            assert probe["exec"]["command"] == ["/opt/latest/bin/python3", "/etc/metaflow-db/check_login.py"]
            mount = next(m for m in container["volumeMounts"] if m["name"] == "db-credentials")
            assert not mount.get("readOnly")


def test_metaflow_scripts_are_valid_python() -> None:
    from components.orchestrator import metaflow_db_files

    for name, text in metaflow_db_files("a-team").items():
        if name.endswith(".py"):
            compile(text, name, "exec")


def test_metaflow_roles_read_only_their_secret_and_their_teams_metaflow_root(stack_plan: Plan) -> None:
    stack = stack_plan.stack
    db = _one(stack_plan, "aws:rds/instance:Instance", f"{stack}-orchestrator-metadata-db")
    bucket_arn = _artifacts_bucket(stack_plan).outputs["arn"]
    for team in _spec(stack_plan).teams:
        role = _one(stack_plan, "aws:iam/role:Role", f"{stack}-orchestrator-{team.name}-metaflow-role")
        assert role.inputs["name"] == f"{stack}-metaflow-{team.name}"
        (secret_policy,) = [
            p
            for p in stack_plan.by_type("aws:iam/rolePolicy:RolePolicy")
            if p.inputs["role"] == role.inputs["name"] and p.name.endswith("metaflow-db-secret")
        ]
        statements = policy_json(secret_policy.inputs["policy"])["Statement"]
        read = next(s for s in statements if s["Sid"] == "ReadDatabaseCredentials")
        assert (
            read["Resource"].startswith("arn:aws:secretsmanager:")
            and f"rds!{db.inputs['identifier']}" in read["Resource"]
        )
        decrypt = next(s for s in statements if s["Sid"] == "DecryptThroughSecretsManager")
        assert decrypt["Condition"]["StringEquals"]["kms:ViaService"].startswith("secretsmanager.")
        objects = _s3_object_resources(stack_plan, role.inputs["name"])
        assert objects == {f"{bucket_arn}/{team.name}/metaflow/*"}


def _s3_object_resources(plan: Plan, role_name: str) -> set[str]:
    found: set[str] = set()
    for policy in plan.by_type("aws:iam/rolePolicy:RolePolicy"):
        if policy.inputs["role"] != role_name:
            continue
        for statement in policy_json(policy.inputs["policy"])["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            if any(a.startswith("s3:") for a in actions):
                found |= {r for r in resources if "/" in r.split(":::", 1)[-1]}
    return found


def test_each_team_gets_a_workflow_identity_reaching_only_its_prefixes(stack_plan: Plan) -> None:
    stack = stack_plan.stack
    teams = _spec(stack_plan).teams
    assert teams
    associations = {
        (a.inputs["namespace"], a.inputs["serviceAccount"]): a
        for a in stack_plan.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    }
    accounts = {
        (a.inputs["metadata"]["namespace"], a.inputs["metadata"]["name"])
        for a in stack_plan.by_type("kubernetes:core/v1:ServiceAccount")
    }
    buckets = {
        b.name.removeprefix(f"{stack}-storage-").removesuffix("-bucket"): b
        for b in stack_plan.by_type("aws:s3/bucket:Bucket")
    }
    for team in teams:
        assert (team.name, WORKFLOW_SERVICE_ACCOUNT) in accounts
        role = _one(stack_plan, "aws:iam/role:Role", f"{stack}-orchestrator-{team.name}-workflows-role")
        association = associations[(team.name, WORKFLOW_SERVICE_ACCOUNT)]
        assert association.inputs["roleArn"] == role.outputs["arn"]
        objects = _s3_object_resources(stack_plan, role.inputs["name"])
        expected = {f"{buckets[p].outputs['arn']}/{team.name}/*" for p in ("datasets", "artifacts", "models")}
        assert objects == expected


def test_workflow_executor_may_only_report_results(stack_plan: Plan) -> None:
    for team in _spec(stack_plan).teams:
        role = _one(
            stack_plan,
            "kubernetes:rbac.authorization.k8s.io/v1:Role",
            f"{stack_plan.stack}-orchestrator-{team.name}-executor",
        )
        assert role.inputs["rules"] == [
            {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
        ]


def test_metaflow_config_output_per_team(stack_plan: Plan) -> None:
    spec = _spec(stack_plan)
    config = stack_plan.outputs["metaflow_config"]
    assert set(config) == {t.name for t in spec.teams}
    bucket = _artifacts_bucket(stack_plan).inputs["bucket"]
    for team, values in config.items():
        assert values["METAFLOW_DATASTORE_SYSROOT_S3"] == f"s3://{bucket}/{team}/metaflow"
        assert values["METAFLOW_KUBERNETES_NAMESPACE"] == team
        assert values["METAFLOW_KUBERNETES_SERVICE_ACCOUNT"] == WORKFLOW_SERVICE_ACCOUNT
        assert values["METAFLOW_DEFAULT_METADATA"] == "service"
        # Laptops reach the service through a port-forward; pods get the in-cluster URL (rt-data F4).
        assert values["METAFLOW_SERVICE_URL"] == "http://localhost:8080"
        assert values["METAFLOW_SERVICE_INTERNAL_URL"] == (
            f"http://metaflow-metadata-{team}.{spec.orchestrator.metaflow_namespace}.svc.cluster.local:8080"
        )
        # Metaflow cannot send a key id, and the bucket refuses aws:kms without one (rt-data S1).
        assert "METAFLOW_S3_SERVER_SIDE_ENCRYPTION" not in values
        # Metaflow reads only METAFLOW_* keys from its config file (rt-data M2).
        assert all(k.startswith("METAFLOW_") for k in values)
        # Steps default to an image through the ECR cache, not python:X.Y from Docker Hub (rt-data R2).
        # Step pods carry the team's cost-center for split cost allocation data (rt-data F3).
        cost_center = next(t.cost_center for t in spec.teams if t.name == team)
        assert (
            values["METAFLOW_KUBERNETES_LABELS"]
            == f"team-cost-center={cost_center},mlstack.dev/team={team},kueue.x-k8s.io/queue-name=default"
        )
        image = values["METAFLOW_KUBERNETES_CONTAINER_IMAGE"]
        assert (
            image
            == f"{spec.account_id}.dkr.ecr.{spec.region}.amazonaws.com/ecr-public/docker/library/python:3.12"
        )
        assert values["METAFLOW_ARGO_WORKFLOWS_UI_URL"].startswith("http://argo-workflows-server.")
        secretish = [
            k for k in values if any(w in k for w in ("PASSWORD", "PSWD", "SECRET", "AUTH_KEY", "TOKEN"))
        ]
        assert secretish == []
    json.dumps(config)  # a data scientist pipes it straight into config.json


def test_argo_writes_artifacts_with_the_buckets_own_key(stack_plan: Plan) -> None:
    """Without kmsKeyId Argo sends SSE-S3 (AES256), which the artifacts bucket refuses; with it, SSE-KMS with
    the bucket's key (rt-data F1)."""
    s3 = _argo_values(stack_plan)["artifactRepository"]["s3"]
    bucket = _artifacts_bucket(stack_plan)
    (encryption,) = [
        r
        for r in stack_plan.by_type(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        )
        if bucket.urn in r.property_dependencies.get("bucket", [])
    ]
    key = encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]
    assert s3["encryptionOptions"] == {"enableEncryption": True, "kmsKeyId": key}


def test_metaflow_service_speaks_tls_to_rds_from_a_current_release(stack_plan: Plan) -> None:
    """metaflow-service before v2.4.4 ignored MF_METADATA_DB_SSL_MODE in its migration; v2.4.13 reads it in
    run_goose.py and in the services. The services run as non-root from /tmp, not the image's /root
    (rt-data U4, R4, F5)."""
    spec = _spec(stack_plan)
    assert spec.orchestrator.metadata_service_image.endswith("/outerbounds/metaflow_metadata_service:v2.4.13")
    sets = _metaflow_sets(stack_plan)
    assert sets
    for workload in sets:
        pod = _pod(workload)
        for container in pod["containers"] + pod.get("initContainers", []):
            if container["image"].endswith("metaflow_metadata_service:v2.4.13"):
                env = {e["name"]: e.get("value") for e in container["env"]}
                assert env["MF_METADATA_DB_SSL_MODE"] == "require", container["name"]
        for container in pod["containers"]:
            assert container["workingDir"] == "/tmp"
