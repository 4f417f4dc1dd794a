"""VectorDb on the recorded plans: Qdrant's auth, persistence, isolation and snapshots in every stack, the
aurora-pgvector engine on a variant of the staging and prod plans, and no plaintext password in any input."""

from __future__ import annotations

import copy
import dataclasses
from functools import cache
from typing import Any

import pytest

from components.vectordb import API_KEY_FIELD, API_KEY_SECRET
from mlstack.plan.mocks import _digest
from mlstack.plan.recorder import Plan, RecordedResource, run_program
from mlstack.spec import PlatformSpec
from mlstack.spec.loader import SPEC_KEY
from tests.plans import PROJECT, STACKS, plan_of, policy_json

SECRET_SIG = "4dabf18193072939515e22adb298388d"


def _spec(plan: Plan) -> PlatformSpec:
    return PROJECT.load(plan.stack)[1]


def _one(plan: Plan, type_: str, name: str) -> RecordedResource:
    (found,) = [r for r in plan.by_type(type_) if r.name == name]
    return found


@cache
def aurora_plan(stack: str) -> Plan:
    """The shipped stack file with its vector database switched to aurora-pgvector, run like the real stack."""
    config, _ = PROJECT.load(stack)
    values = copy.deepcopy(config.values)
    platform = values[SPEC_KEY]
    platform["vector_db"] = {"engine": "aurora-pgvector"}
    variant = dataclasses.replace(config, values=values)
    return run_program(PROJECT.program, variant, PlatformSpec.model_validate(platform))


def _qdrant_values(plan: Plan) -> dict[str, Any]:
    return _one(plan, "kubernetes:helm.sh/v3:Release", f"{plan.stack}-vectordb-qdrant").inputs["values"]


def test_qdrant_chart_is_pinned_with_auth_and_replicas(stack_plan: Plan) -> None:
    spec = _spec(stack_plan).vector_db
    assert spec.engine == "qdrant"
    release = _one(stack_plan, "kubernetes:helm.sh/v3:Release", f"{stack_plan.stack}-vectordb-qdrant")
    assert release.inputs["version"] == spec.qdrant_chart_version
    assert release.inputs["repositoryOpts"]["repo"] == "https://qdrant.github.io/qdrant-helm"
    values = release.inputs["values"]
    assert values["apiKey"] == {"valueFrom": {"secretKeyRef": {"name": API_KEY_SECRET, "key": API_KEY_FIELD}}}
    expected = {"dev": 1, "staging": 3, "prod": 3}[stack_plan.stack]
    assert values["replicaCount"] == spec.replicas == expected
    assert values["config"]["cluster"]["enabled"] is (expected > 1)


def test_qdrant_runs_non_root_on_encrypted_storage_behind_cluster_ip(stack_plan: Plan) -> None:
    values = _qdrant_values(stack_plan)
    assert values["service"]["type"] == "ClusterIP" and values["ingress"]["enabled"] is False
    container = values["containerSecurityContext"]
    assert container["runAsNonRoot"] is True and container["runAsUser"] > 0
    assert container["allowPrivilegeEscalation"] is False and container["readOnlyRootFilesystem"] is True
    assert values["updateVolumeFsOwnership"] is False, "the chown init container would run as root"
    assert {"cpu", "memory"} <= set(values["resources"]["requests"])
    storage_class = _one(
        stack_plan, "kubernetes:storage.k8s.io/v1:StorageClass", f"{stack_plan.stack}-cluster-gp3"
    )
    assert storage_class.inputs["parameters"]["encrypted"] == "true"
    for volume in ("persistence", "snapshotPersistence"):
        assert values[volume]["storageClassName"] == storage_class.inputs["metadata"]["name"]


def test_no_service_of_the_platform_is_public(stack_plan: Plan) -> None:
    for service in stack_plan.by_type("kubernetes:core/v1:Service"):
        assert service.inputs["spec"].get("type") not in {"LoadBalancer", "NodePort"}, service.urn
    for release in stack_plan.by_type("kubernetes:helm.sh/v3:Release"):
        if release.name.startswith((f"{stack_plan.stack}-orchestrator", f"{stack_plan.stack}-vectordb")):
            values = release.inputs["values"]
            service_types = {
                values.get("service", {}).get("type"),
                values.get("server", {}).get("serviceType"),
            }
            assert service_types <= {None, "ClusterIP"}, release.urn


def test_network_policy_admits_only_team_namespaces(stack_plan: Plan) -> None:
    spec = _spec(stack_plan)
    (policy,) = [
        p
        for p in stack_plan.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if p.inputs["metadata"]["namespace"] == spec.vector_db.namespace
    ]
    rules = policy.inputs["spec"]["ingress"]
    namespace_rules = [r for r in rules if "matchExpressions" in r["from"][0].get("namespaceSelector", {})]
    (clients,) = namespace_rules
    # The platform's Prometheus, and only its pods, on the REST port that serves /metrics.
    (scrape,) = [r for r in rules if "matchLabels" in r["from"][0].get("namespaceSelector", {})]
    assert scrape["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": spec.metrics.namespace}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    assert scrape["ports"] == [{"protocol": "TCP", "port": 6333}]
    (expression,) = clients["from"][0]["namespaceSelector"]["matchExpressions"]
    assert (expression["key"], expression["operator"]) == ("kubernetes.io/metadata.name", "In")
    assert expression["values"] == sorted(t.name for t in spec.teams)
    for rule in rules:
        for source in rule["from"]:
            assert set(source) <= {"namespaceSelector", "podSelector"}, "no ipBlock may open Qdrant wider"


def test_snapshots_go_to_their_prefix_of_the_artifacts_bucket(stack_plan: Plan) -> None:
    spec = _spec(stack_plan).vector_db
    stack = stack_plan.stack
    job = _one(stack_plan, "kubernetes:batch/v1:CronJob", f"{stack}-vectordb-snapshots")
    assert job.inputs["spec"]["schedule"] == spec.snapshot_schedule
    pod = job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    bucket = _one(stack_plan, "aws:s3/bucket:Bucket", f"{stack}-storage-artifacts-bucket")
    upload = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in upload["env"]}
    assert env["BUCKET"] == bucket.inputs["bucket"] and env["PREFIX"] == spec.snapshot_prefix
    for container in pod["containers"] + pod["initContainers"]:
        assert container["securityContext"]["runAsNonRoot"] is True
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    role = _one(stack_plan, "aws:iam/role:Role", f"{stack}-vectordb-snapshots-role")
    writes = [
        policy_json(p.inputs["policy"])
        for p in stack_plan.by_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] == role.inputs["name"]
    ]
    object_resources = {
        r
        for document in writes
        for statement in document["Statement"]
        for r in (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        if r.startswith(bucket.outputs["arn"] + "/")
    }
    assert object_resources == {f"{bucket.outputs['arn']}/{spec.snapshot_prefix}/*"}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_aurora_pgvector_defaults(stack: str) -> None:
    plan = aurora_plan(stack)
    spec = _spec(plan).vector_db
    assert not [r for r in plan.resources if r.name.startswith(f"{stack}-vectordb-qdrant")]
    cluster = _one(plan, "aws:rds/cluster:Cluster", f"{stack}-vectordb-aurora")
    inputs = cluster.inputs
    data_key = _one(plan, "aws:kms/key:Key", f"{stack}-keys-data")
    assert inputs["engine"] == "aurora-postgresql" and inputs["engineMode"] == "provisioned"
    assert inputs["storageEncrypted"] is True and inputs["kmsKeyId"] == data_key.outputs["arn"]
    assert inputs["iamDatabaseAuthenticationEnabled"] is True
    assert inputs["manageMasterUserPassword"] is True and "masterPassword" not in inputs
    assert inputs["deletionProtection"] is True and inputs["skipFinalSnapshot"] is False
    assert inputs["backupRetentionPeriod"] >= 7
    scaling = inputs["serverlessv2ScalingConfiguration"]
    expected_min = {"staging": 0.5, "prod": 2.0}[stack]
    assert (scaling["minCapacity"], scaling["maxCapacity"]) == (expected_min, spec.aurora_max_acu)
    assert cluster.protect and cluster.retain_on_delete
    instances = [i for i in plan.by_type("aws:rds/clusterInstance:ClusterInstance") if "vectordb" in i.name]
    assert len(instances) == spec.aurora_instances >= 2
    assert all(i.inputs["publiclyAccessible"] is False for i in instances)
    assert all(i.inputs["instanceClass"] == "db.serverless" for i in instances)
    subnets = _one(plan, "aws:rds/subnetGroup:SubnetGroup", f"{stack}-vectordb-db-subnets")
    private = {
        s.id for s in plan.by_type("aws:ec2/subnet:Subnet") if s.inputs.get("mapPublicIpOnLaunch") is not True
    }
    assert set(subnets.inputs["subnetIds"]) <= private


def test_aurora_in_dev_stays_cheap_and_disposable() -> None:
    inputs = _one(aurora_plan("dev"), "aws:rds/cluster:Cluster", "dev-vectordb-aurora").inputs
    assert inputs["serverlessv2ScalingConfiguration"]["minCapacity"] == 0.0
    assert inputs["deletionProtection"] is False and inputs["skipFinalSnapshot"] is True
    assert inputs["storageEncrypted"] is True


def _random_results(plan: Plan) -> set[str]:
    # The mock answers every random resource with a deterministic result derived from stack, type and name.
    return {
        f"mock-{_digest(plan.stack, r.type, r.name)[:32]}"
        for r in plan.resources
        if r.type.startswith("random:")
    }


def _plaintext_strings(value: Any) -> list[str]:
    """Every string in a recorded input, leaving out what sits inside a secret envelope."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return []
        return [s for key, item in value.items() for s in [key, *_plaintext_strings(item)]]
    if isinstance(value, list):
        return [s for item in value for s in _plaintext_strings(item)]
    return [value] if isinstance(value, str) else []


def _plans() -> list[Plan]:
    return [plan_of(stack) for stack in STACKS] + [aurora_plan(stack) for stack in STACKS]


@pytest.mark.parametrize("index", range(2 * len(STACKS)))
def test_no_plaintext_password_in_any_recorded_input(index: int) -> None:
    plan = _plans()[index]
    generated = _random_results(plan)
    shipped = index < len(STACKS)  # the shipped stacks run qdrant, whose API key comes from random
    assert bool(generated) is shipped
    for resource in plan.resources:
        strings = _plaintext_strings(resource.inputs)
        leaked = [s for s in strings if any(g in s for g in generated)]
        assert leaked == [], f"{resource.urn} carries a generated secret in plaintext"
        if resource.type == "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition":
            # A CRD's keys are the names of its schema's fields (External Secrets' has `password` properties),
            # not values; generated secrets in it were checked above.
            continue
        keys = {k.lower() for k in strings}
        assert not keys & {"password", "masterpassword", "master_password"}, resource.urn


def test_the_api_key_secret_is_a_secret_in_state(stack_plan: Plan) -> None:
    secret = _one(stack_plan, "kubernetes:core/v1:Secret", f"{stack_plan.stack}-vectordb-api-key-secret")
    assert SECRET_SIG in secret.inputs["stringData"]
    keys = _random_results(stack_plan)
    assert len(keys) == 2  # the read-write and the read-only key
    data = secret.inputs["stringData"]["value"]
    assert {data[API_KEY_FIELD], data["read-only-api-key"]} == keys
    for delivered in stack_plan.by_type("kubernetes:core/v1:Secret"):
        if delivered.inputs["metadata"]["name"] in ("qdrant-read-only", "qdrant-read-write"):
            assert SECRET_SIG in delivered.inputs["stringData"], delivered.urn


def test_readers_get_a_read_only_key_and_only_writer_teams_the_full_one(stack_plan: Plan) -> None:
    """One full-access key, held nowhere but the Qdrant namespace, let any client that got it drop every team's
    collections (rt-data R3): the chart gets a read-only key too, every team namespace receives the read-only
    key, and only the declared writer teams receive the read-write one."""
    spec = _spec(stack_plan)
    (release,) = [
        r for r in stack_plan.by_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "qdrant"
    ]
    values = release.inputs["values"]
    assert values["readOnlyApiKey"] == {
        "valueFrom": {"secretKeyRef": {"name": API_KEY_SECRET, "key": "read-only-api-key"}}
    }
    assert values["apiKey"]["valueFrom"]["secretKeyRef"]["key"] == API_KEY_FIELD
    delivered: dict[str, set[str]] = {}
    for secret in stack_plan.by_type("kubernetes:core/v1:Secret"):
        meta = secret.inputs["metadata"]
        if meta["name"] in ("qdrant-read-only", "qdrant-read-write"):
            delivered.setdefault(meta["namespace"], set()).add(meta["name"])
    assert spec.vector_db.writer_teams, "the shipped stacks name a writer team"
    assert delivered == {
        team.name: {"qdrant-read-only"}
        | ({"qdrant-read-write"} if team.name in spec.vector_db.writer_teams else set())
        for team in spec.teams
    }


def test_qdrant_image_comes_through_the_docker_hub_cache_unless_opted_out() -> None:
    """The chart's docker.io/qdrant/qdrant bypassed the environment's ECR (rt-data R2): with a docker-hub
    cache the release pulls the same image through it; without one the spec refuses unless the named opt-out
    is set (the shipped stacks set it until Docker Hub credentials exist)."""
    from components.registry import PullThrough
    from components.vectordb import qdrant_values
    from mlstack.spec.vectordb import VectorDbSpec

    through = PullThrough(
        host="111122223333.dkr.ecr.us-east-1.amazonaws.com", prefixes={"registry-1.docker.io": "docker-hub"}
    )
    values = qdrant_values(VectorDbSpec(), storage_class="gp3", pull_through=through)
    assert values["image"] == {
        "repository": "111122223333.dkr.ecr.us-east-1.amazonaws.com/docker-hub/qdrant/qdrant"
    }
    opted_out = qdrant_values(VectorDbSpec(qdrant_image_through_cache=False), storage_class="gp3")
    assert "image" not in opted_out
    for stack in STACKS:
        _, spec = PROJECT.load(stack)
        assert spec.vector_db.qdrant_image_through_cache is False, "shipped stacks name the opt-out"


def _tls(plan: Plan, suffix: str) -> RecordedResource:
    (found,) = [
        r for r in plan.resources if r.type.startswith("tls:") and r.name == f"{plan.stack}-vectordb-{suffix}"
    ]
    return found


def _string_data(secret: RecordedResource) -> dict[str, str]:
    data = secret.inputs["stringData"]
    return data["value"] if SECRET_SIG in data else data


def test_qdrant_serves_its_api_and_peer_traffic_over_tls(stack_plan: Plan) -> None:
    """rt-data R3: the API key travelled over plain HTTP. Qdrant now serves REST, gRPC and Raft over TLS with
    a certificate of the platform's own Qdrant CA, read from a mounted Secret and reloaded hourly."""
    from components.vectordb import CA_FIELD, TLS_MOUNT, TLS_SECRET

    values = _qdrant_values(stack_plan)
    config = values["config"]
    assert config["service"]["enable_tls"] is True
    assert config["cluster"]["p2p"]["enable_tls"] is True
    assert config["tls"] == {
        "cert": f"{TLS_MOUNT}/tls.crt",
        "key": f"{TLS_MOUNT}/tls.key",
        "ca_cert": f"{TLS_MOUNT}/{CA_FIELD}",
        "cert_ttl": 3600,
    }
    assert values["additionalVolumes"] == [{"name": "tls", "secret": {"secretName": TLS_SECRET}}]
    assert values["additionalVolumeMounts"] == [{"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True}]

    ca_key, server_key = _tls(stack_plan, "ca-key"), _tls(stack_plan, "server-key")
    ca, server = _tls(stack_plan, "ca"), _tls(stack_plan, "server-cert")
    assert ca.inputs["isCaCertificate"] is True
    assert sorted(ca.inputs["allowedUses"]) == ["cert_signing", "crl_signing"]
    assert "server_auth" in server.inputs["allowedUses"] and "client_auth" in server.inputs["allowedUses"]
    assert server.inputs["validityPeriodHours"] == 8760 and server.inputs["earlyRenewalHours"] == 720
    for key in (ca_key, server_key):
        assert (key.inputs["algorithm"], key.inputs["ecdsaCurve"]) == ("ECDSA", "P256")

    (secret,) = [
        s
        for s in stack_plan.by_type("kubernetes:core/v1:Secret")
        if s.inputs["metadata"]["name"] == TLS_SECRET
    ]
    assert secret.inputs["type"] == "kubernetes.io/tls" and SECRET_SIG in secret.inputs["stringData"]
    data = _string_data(secret)
    assert data["tls.crt"].startswith("mock-cert-") and data[CA_FIELD].startswith("mock-cert-")
    assert data["tls.crt"] != data[CA_FIELD]
    assert data["tls.key"].startswith("mock-private-key-")
    # The CA's private key signs in state only: no Secret, no input of any Kubernetes object carries it.
    ca_private = f"mock-private-key-{_digest(stack_plan.stack, ca_key.type, ca_key.name)[:32]}"
    assert data["tls.key"] != ca_private
    for resource in stack_plan.resources:
        if resource.type.startswith("kubernetes:"):
            assert ca_private not in repr(resource.inputs), resource.urn


def test_the_certificate_names_the_service_and_every_peer(stack_plan: Plan) -> None:
    spec = _spec(stack_plan).vector_db
    names = set(_tls(stack_plan, "server-csr").inputs["dnsNames"])
    assert f"qdrant.{spec.namespace}.svc.cluster.local" in names
    # qdrant-helm qdrant-1.19.0 templates/configmap.yaml: peers join at qdrant-<i>.qdrant-headless:6335.
    assert {f"qdrant-{i}.qdrant-headless" for i in range(spec.replicas)} <= names
    assert not any("*" in n for n in names)


def test_clients_get_the_https_endpoint_and_the_ca(stack_plan: Plan) -> None:
    ca = _tls(stack_plan, "ca")
    ca_pem = f"mock-cert-{_digest(stack_plan.stack, ca.type, ca.name)[:32]}"
    delivered = [
        s
        for s in stack_plan.by_type("kubernetes:core/v1:Secret")
        if s.inputs["metadata"]["name"] in ("qdrant-read-only", "qdrant-read-write")
    ]
    assert delivered
    for secret in delivered:
        data = _string_data(secret)
        assert data["endpoint"].startswith("https://qdrant.") and data["endpoint"].endswith(":6333")
        assert data["ca.crt"] == ca_pem, secret.urn
        assert "tls.key" not in data


def test_the_snapshot_job_verifies_qdrant_with_the_ca_only(stack_plan: Plan) -> None:
    from components.vectordb import TLS_SECRET

    (job,) = [r for r in stack_plan.by_type("kubernetes:batch/v1:CronJob") if r.name.endswith("snapshots")]
    pod = job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (take,) = pod["initContainers"]
    script = take["command"][-1]
    assert 'host="https://qdrant-$i.qdrant-headless:6333"' in script
    assert "export CURL_CA_BUNDLE=/etc/qdrant-tls/ca.crt" in script
    assert "-k" not in script.split() and "--insecure" not in script
    (volume,) = [v for v in pod["volumes"] if v["name"] == "qdrant-ca"]
    assert volume["secret"] == {"secretName": TLS_SECRET, "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert {"name": "qdrant-ca", "mountPath": "/etc/qdrant-tls", "readOnly": True} in take["volumeMounts"]


def test_the_rendered_chart_speaks_https_to_probes_and_peers() -> None:
    """Through the real chart (helm template, as the deploy simulation renders it): probes use HTTPS and the
    peers' URIs https, so the Raft port is TLS too."""
    from mlstack.simulate.objects import chart_objects
    from tests.simulation import world_of

    objects = [o for o in chart_objects(world_of("prod")) if o.release == "qdrant"]
    (config,) = [o for o in objects if o.kind == "ConfigMap" and "initialize.sh" in o.obj.get("data", {})]
    assert "https://qdrant-0.qdrant-headless:6335" in config.obj["data"]["initialize.sh"]
    assert "enable_tls: true" in config.obj["data"]["production.yaml"]
    (statefulset,) = [o for o in objects if o.kind == "StatefulSet"]
    (container,) = statefulset.obj["spec"]["template"]["spec"]["containers"]
    probes = [container[p] for p in ("readinessProbe", "livenessProbe", "startupProbe") if p in container]
    assert probes and all(p["httpGet"]["scheme"] == "HTTPS" for p in probes)
    assert {"name": "tls", "mountPath": "/qdrant/tls", "readOnly": True} in container["volumeMounts"]
