"""The vector database: Qdrant on the cluster or Aurora PostgreSQL with pgvector."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random
import pulumi_tls as tls

from components.cluster import Cluster, system_placement
from components.environment import Environment
from components.options import child, stateful
from components.registry import PullThrough
from components.storage import Bucket
from components.workloads import (
    POSTGRES_PORT,
    RESTRICTED_CONTAINER,
    clients_only_policy,
    database_network,
    namespace,
    restricted_pod,
    secret_name,
    tls_parameter_group,
    workload_role,
)
from mlstack.spec import PlatformSpec
from mlstack.spec.vectordb import QDRANT_IMAGE_REPOSITORY, VectorDbSpec

QDRANT_CHART = "qdrant"
QDRANT_REPOSITORY = "https://qdrant.github.io/qdrant-helm"
QDRANT_RELEASE = "qdrant"
QDRANT_HTTP_PORT = 6333
QDRANT_GRPC_PORT = 6334
QDRANT_P2P_PORT = 6335
API_KEY_SECRET = "qdrant-api-key"  # noqa: S105 - the Secret's name, not its value
API_KEY_FIELD = "api-key"
READ_ONLY_KEY_FIELD = "read-only-api-key"
# What each client namespace receives: the read-only key always, the read-write key for writer teams only.
READ_ONLY_SECRET = "qdrant-read-only"  # noqa: S105 - the Secret's name, not its value
READ_WRITE_SECRET = "qdrant-read-write"  # noqa: S105 - the Secret's name, not its value
SNAPSHOT_JOB = "qdrant-snapshots"
# Qdrant's certificate: a Secret in Qdrant's namespace (server chain, key and the CA), mounted read-only into
# the pods; clients get the CA certificate alone, next to their key.
TLS_SECRET = "qdrant-tls"  # noqa: S105 - the Secret's name, not its value
TLS_MOUNT = "/qdrant/tls"
CA_FIELD = "ca.crt"
# Server certificate lifetime, and how early before expiry `pulumi up` replaces it (tls provider
# `early_renewal_hours`): a monthly deploy always renews in time. The CA lives ten years.
SERVER_CERT_HOURS = 365 * 24
SERVER_CERT_RENEWAL_HOURS = 30 * 24
CA_CERT_HOURS = 10 * 365 * 24
# Pinned images of the snapshot job: curl talks to Qdrant, the AWS CLI uploads with Pod Identity credentials.
AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.27.0"
AURORA_ENGINE_VERSION = "16.6"
AURORA_DB_NAME = "vectors"
AURORA_USER = "vectors"


@dataclass(frozen=True)
class VectorDbArgs:
    """Inputs of the VectorDb. The Kubernetes inputs are used by the qdrant engine, the network inputs by both."""

    env: Environment
    spec: VectorDbSpec
    pull_through: PullThrough
    k8s_provider: k8s.Provider
    cluster: Cluster
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    data_key_arn: pulumi.Input[str]
    boundary_arn: pulumi.Input[str]
    # Qdrant writes its snapshots here; absent only when no engine needs it (the spec refuses the rest).
    artifacts: Bucket | None
    client_namespaces: Sequence[str]
    scraper_namespaces: Sequence[str] = ()
    """Namespaces whose Prometheus scrapes Qdrant's /metrics on the REST port (the platform's metrics stack)."""
    team_namespaces: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    """Per team, what its namespaced objects wait for (``Teams.namespace_ready``); empty when none."""
    admission_ready: Sequence[pulumi.Resource] = ()
    """What every workload waits for because a cluster-wide fail-closed admission webhook must be serving first
    (``Teams.admission_ready``: the Kueue release, whose Deployment, StatefulSet and Job webhooks admit every
    namespace but kube-system and kueue-system). Empty when none."""


class VectorDb(pulumi.ComponentResource):
    """The vector database, one of two engines behind the same outputs.

    ``qdrant``: the pinned Helm chart with API key auth (a generated key in a Kubernetes Secret, secret in
    state), encrypted persistent volumes, a ClusterIP Service only, a NetworkPolicy that admits only the client
    namespaces, and a CronJob that snapshots every collection to a prefix of the artifacts bucket.
    ``aurora-pgvector``: Aurora PostgreSQL Serverless v2, encrypted, private, IAM auth on, credentials managed
    by RDS in Secrets Manager.

    Outputs: ``engine``, ``endpoint``, ``port``, ``credentials_secret_name`` (a Kubernetes Secret in the
    vector database namespace for qdrant, a Secrets Manager secret for aurora-pgvector).
    """

    engine: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    port: pulumi.Output[int]
    credentials_secret_name: pulumi.Output[str]

    def __init__(self, name: str, args: VectorDbArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlstack:vectordb:VectorDb", name, None, opts)
        spec = args.spec
        # What a monitor scraping Qdrant from its namespace needs first: the namespace and the Secrets it reads
        # (the read-only key, the CA). Only these, not the whole component, whose per-team Secrets would make
        # the monitor's dependency list grow with the number of teams.
        self.scrape_prerequisites: list[pulumi.Resource] = []
        self.engine = pulumi.Output.from_input(spec.engine if spec.enabled else "")
        if not spec.enabled:
            self.endpoint = pulumi.Output.from_input("")
            self.port = pulumi.Output.from_input(0)
            self.credentials_secret_name = pulumi.Output.from_input("")
        elif spec.engine == "qdrant":
            self._qdrant(name, args)
        else:
            self._aurora(name, args)
        self.register_outputs(
            {
                "engine": self.engine,
                "endpoint": self.endpoint,
                "port": self.port,
                "credentials_secret_name": self.credentials_secret_name,
            }
        )

    def _qdrant(self, name: str, args: VectorDbArgs) -> None:
        spec, provider = args.spec, args.k8s_provider
        ns = namespace(self, f"{name}-ns", spec.namespace, provider, "vector-search")
        k8s_opts = child(self, provider=provider, depends_on=[ns])
        api_key = random.RandomPassword(
            f"{name}-api-key",
            length=48,
            special=False,
            opts=child(self, additional_secret_outputs=["result"]),
        )
        read_only_key = random.RandomPassword(
            f"{name}-read-only-key",
            length=48,
            special=False,
            opts=child(self, additional_secret_outputs=["result"]),
        )
        key_secret = k8s.core.v1.Secret(
            f"{name}-api-key-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=API_KEY_SECRET, namespace=spec.namespace, labels=_labels(QDRANT_RELEASE)
            ),
            type="Opaque",
            string_data={
                API_KEY_FIELD: pulumi.Output.secret(api_key.result),
                READ_ONLY_KEY_FIELD: pulumi.Output.secret(read_only_key.result),
            },
            opts=k8s_opts,
        )
        ca_cert_pem, tls_secret = self._certificate(name, args, k8s_opts)
        self.scrape_prerequisites = [ns, key_secret, tls_secret]
        self._deliver_keys(
            name, args, read_write=api_key.result, read_only=read_only_key.result, ca_cert_pem=ca_cert_pem
        )
        k8s.helm.v3.Release(
            f"{name}-qdrant",
            name=QDRANT_RELEASE,
            chart=QDRANT_CHART,
            version=spec.qdrant_chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=QDRANT_REPOSITORY),
            namespace=spec.namespace,
            create_namespace=False,
            atomic=True,
            cleanup_on_fail=True,
            values=args.cluster.storage_class_name.apply(
                lambda storage_class: qdrant_values(
                    spec, storage_class=storage_class, pull_through=args.pull_through
                )
            ),
            opts=child(self, provider=provider, depends_on=[ns, key_secret, tls_secret, *args.admission_ready]),
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-clients",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="qdrant-clients", namespace=spec.namespace, labels=_labels(QDRANT_RELEASE)
            ),
            spec=qdrant_network_policy(args.client_namespaces, args.scraper_namespaces),
            opts=k8s_opts,
        )
        self._snapshots(name, args, ns)
        self.endpoint = pulumi.Output.from_input(qdrant_endpoint(spec))
        self.port = pulumi.Output.from_input(QDRANT_HTTP_PORT)
        self.credentials_secret_name = key_secret.metadata.apply(lambda m: m.name or API_KEY_SECRET)

    def _certificate(
        self, name: str, args: VectorDbArgs, k8s_opts: pulumi.ResourceOptions
    ) -> tuple[pulumi.Output[str], k8s.core.v1.Secret]:
        """Qdrant's CA and server certificate, made by the Pulumi tls provider, and the Secret the pods mount.

        No certificate issuer runs in the cluster (cert-manager is not installed), so the platform is its own
        CA for this one service: the CA's private key exists only in the stack's state (a secret output,
        encrypted by the stack's secrets provider), never in the cluster. The server key and chain are in the
        Secret ``qdrant-tls``; Qdrant re-reads them every hour (``tls.cert_ttl``), so a renewal made by
        ``pulumi up`` needs no restart. Returns the CA certificate (PEM) and the Secret.
        """
        spec = args.spec
        ca_key = tls.PrivateKey(
            f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child(self)
        )
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            subject=tls.SelfSignedCertSubjectArgs(
                common_name=f"{args.env.name} Qdrant CA", organization="mlstack"
            ),
            validity_period_hours=CA_CERT_HOURS,
            allowed_uses=["cert_signing", "crl_signing"],
            opts=child(self),
        )
        server_key = tls.PrivateKey(
            f"{name}-server-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child(self)
        )
        request = tls.CertRequest(
            f"{name}-server-csr",
            private_key_pem=server_key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(
                common_name=f"{QDRANT_RELEASE}.{spec.namespace}.svc", organization="mlstack"
            ),
            dns_names=qdrant_dns_names(spec),
            opts=child(self),
        )
        server = tls.LocallySignedCert(
            f"{name}-server-cert",
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=ca.cert_pem,
            validity_period_hours=SERVER_CERT_HOURS,
            early_renewal_hours=SERVER_CERT_RENEWAL_HOURS,
            # Qdrant presents it to clients (server_auth) and to its peers, which also connect as clients.
            allowed_uses=["digital_signature", "key_encipherment", "server_auth", "client_auth"],
            opts=child(self),
        )
        secret = k8s.core.v1.Secret(
            f"{name}-tls-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=TLS_SECRET, namespace=spec.namespace, labels=_labels(QDRANT_RELEASE)
            ),
            type="kubernetes.io/tls",
            string_data={
                "tls.crt": server.cert_pem,
                "tls.key": pulumi.Output.secret(server_key.private_key_pem),
                CA_FIELD: ca.cert_pem,
            },
            opts=k8s_opts,
        )
        return ca.cert_pem, secret

    def _deliver_keys(
        self,
        name: str,
        args: VectorDbArgs,
        *,
        read_write: pulumi.Output[str],
        read_only: pulumi.Output[str],
        ca_cert_pem: pulumi.Output[str],
    ) -> None:
        """Each client namespace gets a Secret with the read-only key, the endpoint and the CA certificate that
        signs Qdrant's; the writer teams also get the read-write key. Pods mount what they need; nobody copies
        keys by hand."""
        endpoint = qdrant_endpoint(args.spec)
        for client in args.client_namespaces:
            grants: list[tuple[str, pulumi.Output[str]]] = [(READ_ONLY_SECRET, read_only)]
            if client in args.spec.writer_teams:
                grants.append((READ_WRITE_SECRET, read_write))
            for secret, key in grants:
                sealed: pulumi.Output[str] = pulumi.Output.secret(key)
                k8s.core.v1.Secret(
                    f"{name}-{client}-{secret}",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=secret, namespace=client, labels=_labels(QDRANT_RELEASE)
                    ),
                    type="Opaque",
                    string_data={API_KEY_FIELD: sealed, "endpoint": endpoint, CA_FIELD: ca_cert_pem},
                    opts=child(
                        self,
                        provider=args.k8s_provider,
                        depends_on=list(args.team_namespaces.get(client, ())),
                    ),
                )

    def _snapshots(self, name: str, args: VectorDbArgs, ns: k8s.core.v1.Namespace) -> None:
        spec, provider, artifacts = args.spec, args.k8s_provider, args.artifacts
        if artifacts is None:
            # The spec refuses an enabled vector database without the bucket; this guards other callers.
            raise ValueError("Qdrant snapshots need an artifacts bucket; add 'artifacts' to storage.buckets")
        account = k8s.core.v1.ServiceAccount(
            f"{name}-snapshots-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=SNAPSHOT_JOB, namespace=spec.namespace, labels=_labels(SNAPSHOT_JOB)
            ),
            automount_service_account_token=False,
            opts=child(self, provider=provider, depends_on=[ns]),
        )
        role = workload_role(
            self,
            f"{name}-snapshots-role",
            env=args.env,
            role_suffix="qdrant-snapshots",
            boundary_arn=args.boundary_arn,
            cluster=args.cluster,
            namespace=spec.namespace,
            service_account=SNAPSHOT_JOB,
            description="Qdrant snapshot job: writes snapshots under its prefix of the artifacts bucket",
        )
        artifacts.grant_write(role, prefix=f"{spec.snapshot_prefix}/")
        k8s.batch.v1.CronJob(
            f"{name}-snapshots",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=SNAPSHOT_JOB, namespace=spec.namespace, labels=_labels(SNAPSHOT_JOB)
            ),
            spec=artifacts.bucket_name.apply(
                lambda bucket: snapshot_cronjob_spec(
                    spec, bucket=bucket, region=args.env.region, pull_through=args.pull_through
                )
            ),
            opts=child(self, provider=provider, depends_on=[account, role]),
        )

    def _aurora(self, name: str, args: VectorDbArgs) -> None:
        env, spec = args.env, args.spec
        group, subnets = database_network(
            self,
            name,
            env=env,
            purpose="vectors",
            vpc_id=args.vpc_id,
            private_subnet_ids=args.private_subnet_ids,
            cluster_security_group_id=args.cluster.cluster_security_group_id,
        )
        hardened = env.tier.hardened
        parameters = tls_parameter_group(
            self,
            name,
            env=env,
            purpose="vectors",
            family=f"aurora-postgresql{AURORA_ENGINE_VERSION.split('.')[0]}",
            cluster=True,
        )
        cluster = aws.rds.Cluster(
            f"{name}-aurora",
            cluster_identifier=env.resource_name("vectors"),
            engine="aurora-postgresql",
            engine_mode="provisioned",
            engine_version=AURORA_ENGINE_VERSION,
            database_name=AURORA_DB_NAME,
            master_username=AURORA_USER,
            # RDS generates and rotates the password in Secrets Manager: it never enters config or state.
            manage_master_user_password=True,
            master_user_secret_kms_key_id=args.data_key_arn,
            iam_database_authentication_enabled=True,
            storage_encrypted=True,
            kms_key_id=args.data_key_arn,
            db_subnet_group_name=subnets.name,
            db_cluster_parameter_group_name=parameters.name,
            vpc_security_group_ids=[group.id],
            serverlessv2_scaling_configuration=aws.rds.ClusterServerlessv2ScalingConfigurationArgs(
                min_capacity=spec.aurora_min_acu,
                max_capacity=spec.aurora_max_acu,
            ),
            backup_retention_period=spec.backup_retention_days,
            copy_tags_to_snapshot=True,
            deletion_protection=hardened,
            skip_final_snapshot=not hardened,
            final_snapshot_identifier=env.resource_name("vectors", "final") if hardened else None,
            enabled_cloudwatch_logs_exports=["postgresql"],
            apply_immediately=not hardened,
            opts=stateful(self, env),
        )
        for index in range(spec.aurora_instances):
            aws.rds.ClusterInstance(
                f"{name}-aurora-{index}",
                identifier=env.resource_name("vectors", str(index)),
                cluster_identifier=cluster.id,
                engine="aurora-postgresql",
                engine_version=AURORA_ENGINE_VERSION,
                instance_class="db.serverless",
                publicly_accessible=False,
                auto_minor_version_upgrade=True,
                performance_insights_enabled=hardened,
                performance_insights_kms_key_id=args.data_key_arn if hardened else None,
                opts=stateful(self, env),
            )
        self.endpoint = cluster.endpoint
        self.port = pulumi.Output.from_input(POSTGRES_PORT)
        self.credentials_secret_name = secret_name(
            cluster.master_user_secrets.apply(lambda secrets: secrets[0].secret_arn if secrets else "")
        )


def qdrant_endpoint(spec: VectorDbSpec) -> str:
    """The in-cluster URL of Qdrant's REST API: HTTPS, with the platform's Qdrant CA (``ca.crt`` in the
    client Secrets)."""
    return f"https://{QDRANT_RELEASE}.{spec.namespace}.svc.cluster.local:{QDRANT_HTTP_PORT}"


def qdrant_dns_names(spec: VectorDbSpec) -> list[str]:
    """Names the server certificate covers: the Service in every form a client may use, and each replica
    under the headless Service, as the peers reach each other (qdrant-helm qdrant-1.19.0
    templates/configmap.yaml: ``--uri <protocol>://qdrant-<i>.qdrant-headless:<p2p port>``). Explicit names,
    no wildcard."""
    ns = spec.namespace
    service = [QDRANT_RELEASE, f"{QDRANT_RELEASE}.{ns}", f"{QDRANT_RELEASE}.{ns}.svc"]
    names = [*service, f"{QDRANT_RELEASE}.{ns}.svc.cluster.local"]
    for i in range(spec.replicas):
        pod = f"{QDRANT_RELEASE}-{i}.{QDRANT_RELEASE}-headless"
        names += [pod, f"{pod}.{ns}", f"{pod}.{ns}.svc", f"{pod}.{ns}.svc.cluster.local"]
    return names


def vector_db_clients(spec: PlatformSpec) -> list[str]:
    """Namespaces admitted to Qdrant: every team's. Inference endpoints run in their team's namespace, so this
    covers them too; no other namespace (in particular none outside the platform's tenants) gets through."""
    return sorted(team.name for team in spec.teams)


def _labels(name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": "vector-search",
        "app.kubernetes.io/managed-by": "mlstack",
    }


def qdrant_values(
    spec: VectorDbSpec, *, storage_class: str, pull_through: PullThrough | None = None
) -> dict[str, Any]:
    """Helm values of the qdrant chart. Auth, persistence, security context, Service type and (unless the spec
    opts out) the image's registry are explicit."""
    distributed = spec.replicas > 1
    image: dict[str, Any] = {}
    if spec.qdrant_image_through_cache:
        if pull_through is None:
            raise ValueError(
                "Qdrant's image goes through the pull-through cache: pass the registry's PullThrough"
            )
        # Same image and tag (the chart's appVersion), from the environment's ECR cache of Docker Hub.
        image = {"image": {"repository": pull_through.image(QDRANT_IMAGE_REPOSITORY)}}
    return {
        **image,
        "replicaCount": spec.replicas,
        "apiKey": {"valueFrom": {"secretKeyRef": {"name": API_KEY_SECRET, "key": API_KEY_FIELD}}},
        # Readers authenticate with a key that cannot write (qdrant-helm qdrant-1.19.0
        # templates/_helpers.tpl "qdrant.secret": readOnlyApiKey.valueFrom -> service.read_only_api_key).
        "readOnlyApiKey": {
            "valueFrom": {"secretKeyRef": {"name": API_KEY_SECRET, "key": READ_ONLY_KEY_FIELD}}
        },
        "service": {"type": "ClusterIP"},
        "ingress": {"enabled": False},
        "persistence": {
            "accessModes": ["ReadWriteOnce"],
            "size": f"{spec.storage_gb}Gi",
            "storageClassName": storage_class,
        },
        # Snapshots are written next to the data before the job ships them to S3: same class, same size.
        "snapshotPersistence": {
            "enabled": True,
            "accessModes": ["ReadWriteOnce"],
            "size": f"{spec.storage_gb}Gi",
            "storageClassName": storage_class,
        },
        "resources": {
            "requests": {"cpu": spec.cpu_request, "memory": spec.memory_request},
            "limits": {"memory": spec.memory_request},
        },
        "podSecurityContext": {
            "fsGroup": 3000,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containerSecurityContext": {
            **RESTRICTED_CONTAINER,
            "runAsUser": 1000,
            "runAsGroup": 2000,
            "privileged": False,
        },
        # fsGroup already owns the volumes; the chart's chown init container would run as root.
        "updateVolumeFsOwnership": False,
        "podDisruptionBudget": {"enabled": distributed, "maxUnavailable": 1},
        # qdrant-helm qdrant-1.19.0 values.yaml `nodeSelector`, `tolerations`: on the system nodes.
        **system_placement(),
        "affinity": _spread_replicas() if distributed else {},
        # qdrant/qdrant@v1.19.0:config/config.yaml `service.enable_tls`, `cluster.p2p.enable_tls` and `tls`
        # (cert, key, ca_cert: "Required if cluster.p2p.enable_tls is true"; cert_ttl: reload period). The
        # chart renders `config` into production.yaml (templates/configmap.yaml), switches its probes to HTTPS
        # and its peer URIs to https (templates/statefulset.yaml, _helpers.tpl "qdrant.p2p.protocol").
        "config": {
            "cluster": {
                "enabled": distributed,
                "p2p": {"port": QDRANT_P2P_PORT, "enable_tls": True},
            },
            "service": {"enable_tls": True},
            "tls": {
                "cert": f"{TLS_MOUNT}/tls.crt",
                "key": f"{TLS_MOUNT}/tls.key",
                "ca_cert": f"{TLS_MOUNT}/{CA_FIELD}",
                "cert_ttl": 3600,
            },
        },
        # qdrant-helm qdrant-1.19.0 values.yaml `additionalVolumes` / `additionalVolumeMounts` (rendered on the
        # qdrant container and pod by templates/statefulset.yaml).
        "additionalVolumes": [{"name": "tls", "secret": {"secretName": TLS_SECRET}}],
        "additionalVolumeMounts": [{"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True}],
    }


def _spread_replicas() -> dict[str, Any]:
    """Never two replicas on one node; across zones where the nodes allow it."""
    selector = {
        "matchLabels": {"app.kubernetes.io/name": QDRANT_CHART, "app.kubernetes.io/instance": QDRANT_RELEASE}
    }
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"}
            ],
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": selector,
                        "topologyKey": "topology.kubernetes.io/zone",
                    },
                }
            ],
        }
    }


def qdrant_network_policy(client_namespaces: Sequence[str], scraper_namespaces: Sequence[str] = ()) -> dict[str, Any]:
    """Qdrant pods admit the client namespaces on the API ports, their peers on the Raft port, the snapshot
    job on the REST port, and the Prometheus pods of ``scraper_namespaces`` on the REST port, which serves
    /metrics (behind the API key). Nothing else reaches them."""
    qdrant_pods = {"app.kubernetes.io/name": QDRANT_CHART, "app.kubernetes.io/instance": QDRANT_RELEASE}
    policy = clients_only_policy(
        pod_labels=qdrant_pods,
        namespaces=client_namespaces,
        ports=[QDRANT_HTTP_PORT, QDRANT_GRPC_PORT],
    )
    policy["ingress"] += [
        {
            "from": [{"podSelector": {"matchLabels": qdrant_pods}}],
            "ports": [{"protocol": "TCP", "port": p} for p in (QDRANT_HTTP_PORT, QDRANT_P2P_PORT)],
        },
        {
            "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": SNAPSHOT_JOB}}}],
            "ports": [{"protocol": "TCP", "port": QDRANT_HTTP_PORT}],
        },
    ]
    if scraper_namespaces:
        # The Prometheus pods only (the Prometheus Operator's pod labels, mlstack.simulate.operator_made), not
        # every pod of the metrics namespace.
        policy["ingress"].append(
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                    }
                    for ns in scraper_namespaces
                ],
                "ports": [{"protocol": "TCP", "port": QDRANT_HTTP_PORT}],
            }
        )
    return policy


# Each replica holds its own shards, so the job snapshots every collection on every pod (through the
# headless Service), streams the file out and deletes it from the pod's snapshot volume. curl verifies Qdrant's
# certificate against the mounted CA: it reads CURL_CA_BUNDLE as its --cacert (curl docs/cmdline-opts/cacert.md).
_TAKE_SNAPSHOTS = """set -eu
auth="api-key: $QDRANT_API_KEY"
export CURL_CA_BUNDLE=/etc/qdrant-tls/ca.crt
i=0
while [ "$i" -lt "$REPLICAS" ]; do
  host="https://qdrant-$i.qdrant-headless:6333"
  mkdir -p "/snapshots/qdrant-$i"
  for c in $(curl -fsS -H "$auth" "$host/collections" | grep -o '"name":"[^"]*"' | cut -d'"' -f4); do
    snap=$(curl -fsS -X POST -H "$auth" "$host/collections/$c/snapshots?wait=true" \\
      | grep -o '"name":"[^"]*"' | head -n1 | cut -d'"' -f4)
    curl -fsS -H "$auth" -o "/snapshots/qdrant-$i/$c.snapshot" "$host/collections/$c/snapshots/$snap"
    curl -fsS -X DELETE -H "$auth" "$host/collections/$c/snapshots/$snap?wait=true" > /dev/null
  done
  i=$((i + 1))
done
"""
_UPLOAD_SNAPSHOTS = (
    'aws s3 cp --recursive --only-show-errors /snapshots "s3://$BUCKET/$PREFIX/$(date -u +%Y-%m-%dT%H%M%SZ)/"'
)


def snapshot_cronjob_spec(
    spec: VectorDbSpec, *, bucket: str, region: str, pull_through: PullThrough
) -> dict[str, Any]:
    """CronJob spec of the snapshot job: non-root, resources set, credentials from Pod Identity."""
    mount = [{"name": "snapshots", "mountPath": "/snapshots"}]
    small = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
    return {
        "schedule": spec.snapshot_schedule,
        "timeZone": "Etc/UTC",
        "concurrencyPolicy": "Forbid",
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {
            "spec": {
                "backoffLimit": 2,
                "activeDeadlineSeconds": 6 * 3600,
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": SNAPSHOT_JOB}},
                    "spec": {
                        "serviceAccountName": SNAPSHOT_JOB,
                        "restartPolicy": "Never",
                        "securityContext": restricted_pod(),
                        "initContainers": [
                            {
                                "name": "take-snapshots",
                                "image": pull_through.image(
                                    AWS_CLI_IMAGE
                                ),  # the AWS CLI image carries curl too
                                "command": ["/bin/sh", "-c", _TAKE_SNAPSHOTS],
                                "env": [
                                    {"name": "REPLICAS", "value": str(spec.replicas)},
                                    {
                                        "name": "QDRANT_API_KEY",
                                        "valueFrom": {
                                            "secretKeyRef": {"name": API_KEY_SECRET, "key": API_KEY_FIELD}
                                        },
                                    },
                                ],
                                "volumeMounts": [
                                    *mount,
                                    {"name": "qdrant-ca", "mountPath": "/etc/qdrant-tls", "readOnly": True},
                                ],
                                "securityContext": RESTRICTED_CONTAINER,
                                "resources": small,
                            }
                        ],
                        "containers": [
                            {
                                "name": "upload",
                                "image": pull_through.image(AWS_CLI_IMAGE),
                                "command": ["/bin/sh", "-c", _UPLOAD_SNAPSHOTS],
                                "env": [
                                    {"name": "BUCKET", "value": bucket},
                                    {"name": "PREFIX", "value": spec.snapshot_prefix},
                                    {"name": "AWS_REGION", "value": region},
                                    {"name": "HOME", "value": "/tmp"},  # noqa: S108 - a private emptyDir
                                ],
                                "volumeMounts": [*mount, {"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
                                "securityContext": RESTRICTED_CONTAINER,
                                "resources": small,
                            }
                        ],
                        "volumes": [
                            {"name": "snapshots", "emptyDir": {"sizeLimit": f"{spec.storage_gb}Gi"}},
                            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                            # Only the CA certificate of Qdrant's Secret: the job verifies the server, nothing more.
                            {
                                "name": "qdrant-ca",
                                "secret": {
                                    "secretName": TLS_SECRET,
                                    "items": [{"key": CA_FIELD, "path": CA_FIELD}],
                                },
                            },
                        ],
                    },
                },
            }
        },
    }
