"""Data service rules: the RDS and Aurora databases behind the orchestrator and the vector store.

A DB instance (``aws:rds/instance:Instance``) carries its own storage, backup and access settings; an Aurora
cluster (``aws:rds/cluster:Cluster``) carries storage, backups and authentication, and its members
(``aws:rds/clusterInstance:ClusterInstance``) carry public accessibility.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, StackValidationArgs

from policies.framework import (
    Severity,
    Tier,
    depends_on,
    resource_rule,
    resources_of,
    stack_context,
    stack_rule,
)

DB_INSTANCE = "aws:rds/instance:Instance"
DB_CLUSTER = "aws:rds/cluster:Cluster"
CLUSTER_MEMBER = "aws:rds/clusterInstance:ClusterInstance"
SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
CLUSTER_PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
DATABASES = (DB_INSTANCE, DB_CLUSTER)
# The floors the environment spec enforces (mlstack/spec: backup_retention_days >= 7 in hardened tiers).
DEFAULT_MIN_BACKUP_DAYS = {"dev": 1, "staging": 7, "prod": 7}
# The parameter that makes the server refuse connections without TLS, per engine family (RDS user guide,
# "Requiring an SSL connection to a PostgreSQL DB instance" and "... MySQL DB instance").
_TLS_PARAMETERS = {"postgres": ("rds.force_ssl", {"1"}), "mysql": ("require_secure_transport", {"1", "ON"})}


def _what(args: ResourceValidationArgs | PolicyResource) -> str:
    return "cluster" if args.resource_type == DB_CLUSTER else "instance"


@resource_rule(
    "MLS-RDS-001",
    types=DATABASES,
    title="Databases are encrypted with the platform's KMS key",
    why="Metadata and embeddings are platform data: storage, snapshots and replicas must sit under a key the "
    "platform's key policy governs, not the account's default aws/rds key.",
    severity=Severity.HIGH,
    remediation="Set storage_encrypted=True and kms_key_id to the environment's data key.",
    controls={"aws-fsbp": ["RDS.3"]},
)
def database_encrypted(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if args.props.get("storageEncrypted") is not True:
        yield f"the {_what(args)} has storageEncrypted unset or false"
    elif not args.props.get("kmsKeyId"):
        yield f"the {_what(args)} is encrypted with the default aws/rds key, not a customer key (kmsKeyId)"


@resource_rule(
    "MLS-RDS-002",
    types=[DB_INSTANCE, CLUSTER_MEMBER],
    title="Databases are not publicly accessible",
    why="A publicly accessible instance gets a public DNS answer and, in a subnet with an internet route, is "
    "reachable from the internet; the platform's clients all run inside the VPC.",
    severity=Severity.CRITICAL,
    remediation="Set publicly_accessible=False (and keep databases in the private subnets).",
    controls={"aws-fsbp": ["RDS.2"]},
)
def database_private(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if args.props.get("publiclyAccessible") is True:
        yield "publiclyAccessible is true"


@resource_rule(
    "MLS-RDS-003",
    types=DATABASES,
    title="Databases keep automated backups for the tier's retention",
    why="Automated backups are the only point-in-time recovery after a bad migration or a deleted table; the "
    "retention is how far back an incident can still be undone.",
    severity=Severity.HIGH,
    remediation="Set backup_retention_period to at least the tier's minimum (stack file: "
    "orchestrator/vector_db backup_retention_days), or change minBackupRetentionDays after review.",
    controls={"aws-fsbp": ["RDS.11"]},
    config={
        "minBackupRetentionDays": {
            "type": "object",
            "additionalProperties": {"type": "integer"},
            "default": DEFAULT_MIN_BACKUP_DAYS,
            "description": "Fewest days of automated backups per tier.",
        }
    },
)
def database_backups(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    tier = str(stack_context().tier)
    minimum = int((config.get("minBackupRetentionDays") or {}).get(tier, 1))
    # RDS's default when unset is 1 day for both instances and clusters.
    days = float(args.props.get("backupRetentionPeriod") or 1)
    if days < minimum:
        yield f"backupRetentionPeriod is {days:g} days, below the {tier} minimum of {minimum}"


@resource_rule(
    "MLS-RDS-004",
    types=DATABASES,
    title="Databases in staging and prod have deletion protection and a final snapshot",
    why="Pulumi's protect guards only `pulumi destroy`; deletion protection also stops a console or API delete, "
    "and a final snapshot keeps the data when a deletion is intended.",
    severity=Severity.HIGH,
    remediation="Set deletion_protection=True, skip_final_snapshot=False and a final_snapshot_identifier in "
    "hardened tiers.",
    controls={"aws-fsbp": ["RDS.7", "RDS.8"]},
)
def database_deletion_guarded(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if not stack_context().hardened:
        return
    if args.props.get("deletionProtection") is not True:
        yield f"the {_what(args)} has no deletionProtection"
    if args.props.get("skipFinalSnapshot") is True or not args.props.get("finalSnapshotIdentifier"):
        yield f"the {_what(args)} skips its final snapshot (skipFinalSnapshot true or no finalSnapshotIdentifier)"


@resource_rule(
    "MLS-RDS-005",
    types=DATABASES,
    title="Databases accept IAM authentication and keep the master password in Secrets Manager",
    why="Workloads authenticate with their Pod Identity role (rds-db:connect) instead of a shared password, "
    "and the master password is generated and rotated by RDS under the platform's key: it never enters the "
    "stack file, the state or a variable.",
    severity=Severity.HIGH,
    remediation="Set iam_database_authentication_enabled=True, manage_master_user_password=True and "
    "master_user_secret_kms_key_id to the data key; never set password/master_password.",
    controls={"aws-fsbp": ["RDS.10", "RDS.12"]},
)
def database_credentials(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if args.props.get("iamDatabaseAuthenticationEnabled") is not True:
        yield f"the {_what(args)} does not enable IAM database authentication"
    password_key = "masterPassword" if args.resource_type == DB_CLUSTER else "password"
    if args.props.get(password_key) or args.props.get("manageMasterUserPassword") is not True:
        yield f"the master password is not managed by RDS in Secrets Manager ({password_key} is set or "
        "manageMasterUserPassword is not true)"
    elif not args.props.get("masterUserSecretKmsKeyId"):
        yield "the RDS-managed master secret is encrypted with the default key, not masterUserSecretKmsKeyId"


def _tls_enforced(group: PolicyResource, engine: str) -> bool:
    family = "mysql" if "mysql" in engine or "maria" in engine else "postgres"
    name, values = _TLS_PARAMETERS[family]
    return any(
        isinstance(p, Mapping) and p.get("name") == name and str(p.get("value")) in values
        for p in group.props.get("parameters") or []
    )


@stack_rule(
    "MLS-RDS-006",
    subjects=[*DATABASES, PARAMETER_GROUP, CLUSTER_PARAMETER_GROUP],
    title="Databases refuse connections without TLS through their parameter group",
    why="Security groups limit who can connect, not how: only the server parameter (rds.force_ssl, "
    "require_secure_transport) makes a client that asks for no TLS fail instead of sending credentials and "
    "rows in clear. The pack checks the parameter in a group of the stack rather than trusting an engine "
    "default that changes between versions.",
    severity=Severity.MEDIUM,
    remediation="Create an aws.rds.ParameterGroup (ClusterParameterGroup for Aurora) with rds.force_ssl=1 "
    "(PostgreSQL) or require_secure_transport=1 (MySQL) and attach it to the database.",
)
def database_tls_enforced(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    for kind, group_type, prop in (
        (DB_INSTANCE, PARAMETER_GROUP, "parameterGroupName"),
        (DB_CLUSTER, CLUSTER_PARAMETER_GROUP, "dbClusterParameterGroupName"),
    ):
        groups = resources_of(args, group_type)
        for database in resources_of(args, kind):
            name = database.props.get(prop)
            attached = [
                g for g in groups if depends_on(database, prop, g) or (name and g.props.get("name") == name)
            ]
            engine = str(database.props.get("engine") or "")
            if not any(_tls_enforced(g, engine) for g in attached):
                where = f"parameter group {name}" if name else "the engine's default parameter group"
                yield (
                    f"{_what(database)} {database.name} uses {where}, which the stack does not make force TLS",
                    (database.urn),
                )


@stack_rule(
    "MLS-RDS-007",
    subjects=[*DATABASES, CLUSTER_MEMBER, SUBNET_GROUP],
    title="Databases live in a subnet group of the stack, and span several zones in prod",
    why="A database without the stack's subnet group lands in the default VPC's subnets, outside the "
    "platform's network rules; a prod database in one zone (a single-AZ instance, an Aurora cluster with one "
    "member) goes down with its zone.",
    severity=Severity.HIGH,
    remediation="Pass db_subnet_group_name from components.workloads.database_network; keep prod's "
    "orchestrator.db_multi_az and vector_db.aurora_instances >= 2 (the prod defaults).",
)
def database_placement(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    groups = resources_of(args, SUBNET_GROUP)
    names = {g.props.get("name") for g in groups}
    for database in [*resources_of(args, DB_INSTANCE), *resources_of(args, DB_CLUSTER)]:
        group = database.props.get("dbSubnetGroupName")
        if not (group in names or any(depends_on(database, "dbSubnetGroupName", g) for g in groups)):
            yield f"{_what(database)} {database.name} is not in a subnet group of the stack", database.urn
    if stack_context().tier is not Tier.PROD:
        return
    for instance in resources_of(args, DB_INSTANCE):
        if instance.props.get("multiAz") is not True:
            yield f"instance {instance.name} is not Multi-AZ in prod", instance.urn
    members = resources_of(args, CLUSTER_MEMBER)
    for cluster in resources_of(args, DB_CLUSTER):
        own = [m for m in members if depends_on(m, "clusterIdentifier", cluster)]
        if len(own) < 2:
            yield (
                f"cluster {cluster.name} has {len(own)} member instance(s); prod needs 2 or more",
                cluster.urn,
            )
