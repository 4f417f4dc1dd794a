"""Preflight: what most often makes a GPU stack fail half-way through `pulumi up`, checked before it starts.

Each check returns :class:`Result` rows. A check whose call is denied reports NOT_CHECKED with the IAM action
it needed; it never passes. A wrong account or missing credentials stops the account-specific checks,
because their answers would describe some other account.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

import jsonschema
from botocore.exceptions import ClientError

from mlstack.live.aws import Aws, Denied, LiveError, aws_call, error_code
from mlstack.live.bootstrap import state_bucket_name
from mlstack.live.report import Report, Result, Rule, Status
from mlstack.spec import PlatformSpec
from mlstack.spec.gpu import GpuPoolSpec

RULES = (
    Rule("credentials", "AWS credentials are present and belong to the stack's account"),
    Rule("region", "The stack's region is enabled for the account"),
    Rule("zones", "The stack's zones exist, are available and opted in, and offer the pools' GPU types"),
    Rule("offering", "Every GPU instance type of every pool is offered in the stack's zones"),
    Rule("quota", "EC2 vCPU quotas, less their current usage, cover every GPU pool at its maximum"),
    Rule("kubernetes-version", "EKS supports the pinned Kubernetes version in the region"),
    Rule(
        "addon-configuration",
        "The configuration values mlstack gives EKS add-ons validate against each pinned version's schema",
    ),
    Rule("backend", "The Pulumi state backend is reachable"),
    Rule("cost-allocation-tags", "The tags the budgets filter on are active cost allocation tags"),
    Rule(
        "sso-secrets",
        "Every SSO client's Secrets Manager secret exists, is not being deleted and uses the key the operator may "
        "decrypt with (its value is never read)",
    ),
)
# The budgets filter on these user-defined tags (components/governance.py): the environment budget on
# `environment`, team budgets on `team-cost-center` (components.iam.TEAM_COST_CENTER_TAG). `cost-center` is
# activated for the organisation's own reports.
ENVIRONMENT_TAG = "environment"
COST_CENTER_TAG = "cost-center"
TEAM_COST_CENTER_TAG = "team-cost-center"


class GpuType(Protocol):
    """What preflight needs of one row of the GPU instance table."""

    @property
    def name(self) -> str: ...
    @property
    def family(self) -> str: ...
    @property
    def gpu_count(self) -> int: ...
    @property
    def vcpus(self) -> int: ...
    @property
    def efa(self) -> bool: ...


class GpuTable(Protocol):
    """The GPU instance table: expands a family (g5) or exact type (g5.xlarge) to its instance types."""

    def expand(self, selector: str) -> Sequence[GpuType]: ...


@dataclass(frozen=True)
class Quota:
    """An EC2 vCPU quota that GPU instances draw from."""

    code: str
    name: str


# Verified against the Service Quotas console names; G and VT share one quota per purchase option.
QUOTAS: dict[tuple[str, str], Quota] = {
    ("G", "on-demand"): Quota("L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("P", "on-demand"): Quota("L-417A185B", "Running On-Demand P instances"),
    ("G", "spot"): Quota("L-3819A6DF", "All G and VT Spot Instance Requests"),
    ("P", "spot"): Quota("L-7212CCBC", "All P Spot Instance Requests"),
}
PURCHASE_OPTIONS = {
    "spot": ("spot",),
    "on-demand": ("on-demand",),
    # Spot may be unavailable for hours; Karpenter then fills the whole pool on demand, so both must fit.
    "spot-preferred": ("spot", "on-demand"),
}


def quota_class(family: str) -> str | None:
    """The quota class of an instance family: G (g and vt families), P, or None for any other."""
    if family.startswith("vt") or family.startswith("g"):
        return "G"
    if family.startswith("p"):
        return "P"
    return None


def default_gpu_table() -> GpuTable:
    """The project's GPU instance table (components/data/gpu_instances.yaml)."""
    from mlstack.catalog import gpu_catalog

    return gpu_catalog()


@dataclass(frozen=True)
class Preflight:
    """The inputs of one preflight run."""

    aws: Aws
    spec: PlatformSpec
    gpu_table: GpuTable
    backend_url: str | None = None
    # The region's zones, asked once and shared by the zones and offering checks.
    _zone_cache: list[dict[str, dict[str, Any]]] = field(default_factory=list, repr=False, compare=False)

    def run(self) -> Report:
        results = [*self._credentials(), *self._region()]
        # Every later check calls the stack's region, which answers only when the region is enabled.
        identity_ok = results[-1].status is not Status.FAIL
        checks: list[tuple[str, Callable[[], list[Result]]]] = [
            ("zones", self._zone_check),
            ("offering", self._offerings),
            ("quota", self._quotas),
            ("kubernetes-version", self._kubernetes_version),
            ("addon-configuration", self._addon_configuration),
            ("backend", self._backend),
            ("cost-allocation-tags", self._cost_allocation_tags),
            ("sso-secrets", self._sso_secrets),
        ]
        for rule, check in checks:
            if identity_ok:
                results += check()
            else:
                results.append(
                    Result(rule, "-", Status.NOT_CHECKED, "skipped: the stack's region is not enabled")
                )
        return Report(
            tool="preflight",
            title=f"preflight {self.spec.environment} (account {self.spec.account_id}, {self.aws.region})",
            rules=RULES,
            results=tuple(results),
        )

    # --- cost allocation ----------------------------------------------------------------------------------

    def _cost_allocation_tags(self) -> list[Result]:
        """Cost Explorer's ListCostAllocationTags (ce 2017-10-25; botocore data/ce service-2.json and its
        paginator). Cost Explorer answers in us-east-1 whatever the stack's region. Only a management account
        manages cost allocation tags (AWS Billing user guide, custom-tags.html); a member account's call is usually
        denied, which leaves the check NOT_CHECKED, never passed. Split cost allocation data for EKS has no API to
        read its opt-in, so it is not checked here (docs/logs-and-cost.md)."""
        wanted = [ENVIRONMENT_TAG, COST_CENTER_TAG, TEAM_COST_CENTER_TAG]
        needed = [ENVIRONMENT_TAG, *([TEAM_COST_CENTER_TAG] if self.spec.budgets.team_limits_usd else [])]
        statuses: dict[str, str] = {}
        try:
            with aws_call("ce:ListCostAllocationTags"):
                paginator = self.aws.client("ce", region=self._home()).get_paginator(
                    "list_cost_allocation_tags"
                )
                for page in paginator.paginate(TagKeys=wanted, Type="UserDefined"):
                    for tag in page.get("CostAllocationTags", []):
                        statuses[tag["TagKey"]] = tag["Status"]
        except Denied as exc:
            return [
                _denied(
                    "cost-allocation-tags", ",".join(wanted), exc, "run preflight in the management account"
                )
            ]
        return cost_allocation_tag_results(statuses, needed, wanted)

    # --- SSO client secrets ------------------------------------------------------------------------------

    def _sso_secrets(self) -> list[Result]:
        """Each secret External Secrets Operator will sync (mlstack.spec.secrets.synced_sso_clients), with
        DescribeSecret only (Secrets Manager API reference: it returns the secret's metadata, never its value;
        ``DeletedDate`` when a deletion is scheduled; ``KmsKeyId`` only when a customer managed key encrypts it).
        A missing secret would leave the app's pods waiting for their Secret and the release timing out."""
        from mlstack.spec.secrets import synced_sso_clients

        clients = synced_sso_clients(self.spec)
        if not clients:
            return [
                Result(
                    "sso-secrets",
                    "external_secrets",
                    Status.PASS,
                    "no SSO client synced from Secrets Manager",
                )
            ]
        client = self.aws.client("secretsmanager")
        results = []
        for sso in clients:
            subject = f"{sso.app}: {sso.secret_id}"
            try:
                with aws_call("secretsmanager:DescribeSecret"):
                    secret = client.describe_secret(SecretId=sso.secret_id)
            except Denied as exc:
                results.append(_denied("sso-secrets", subject, exc))
                continue
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
                results.append(
                    Result(
                        "sso-secrets",
                        subject,
                        Status.FAIL,
                        f"no such secret in {self.aws.region} (set by {sso.field_path})",
                        f"aws secretsmanager create-secret --region {self.aws.region} --name {sso.secret_id} "
                        "--secret-string file://client.json, with client.json holding "
                        '{"client-id": "...", "client-secret": "..."} (docs/secrets.md)',
                    )
                )
                continue
            results.append(sso_secret_result(subject, secret, self.spec.external_secrets.kms_key_arn))
        return results

    # --- credentials and region --------------------------------------------------------------------------

    def _home(self) -> str:
        """An always-enabled region of the stack region's partition: STS and EC2 there answer even when the
        stack's own region is an opt-in region that is not enabled (whose endpoints reject the credentials)."""
        # AWS STS Regions and endpoints (IAM User Guide): opt-in regions' STS endpoints are not active by default.
        return {"aws-us-gov": "us-gov-west-1", "aws-cn": "cn-north-1"}.get(self.aws.partition, "us-east-1")

    def _credentials(self) -> list[Result]:
        """The caller's identity; missing, expired or foreign credentials stop preflight (exit code 2)."""
        with aws_call("sts:GetCallerIdentity"):
            identity = self.aws.client("sts", region=self._home()).get_caller_identity()
        if identity["Account"] != self.spec.account_id:
            raise LiveError(
                f"credentials ({identity['Arn']}) are for account {identity['Account']}, the stack file of "
                f"{self.spec.environment} wants {self.spec.account_id}; switch to a profile of that account "
                "(AWS_PROFILE=...) and run again"
            )
        return [Result("credentials", identity["Arn"], Status.PASS, f"account {identity['Account']}")]

    def _region(self) -> list[Result]:
        region = self.aws.region
        # Ask an always-enabled endpoint: a disabled region's own endpoint rejects the credentials instead.
        home = self._home()
        try:
            with aws_call("ec2:DescribeRegions"):
                regions = self.aws.client("ec2", region=home).describe_regions(
                    AllRegions=True, RegionNames=[region]
                )["Regions"]
        except Denied as exc:
            return [_denied("region", region, exc)]
        status = regions[0].get("OptInStatus", "unknown") if regions else "unknown region"
        if status in ("opt-in-not-required", "opted-in"):
            return [Result("region", region, Status.PASS, f"enabled ({status})")]
        return [
            Result(
                "region",
                region,
                Status.FAIL,
                f"region is {status}",
                f"aws account enable-region --region-name {region}",
            )
        ]

    # --- zones and offerings -----------------------------------------------------------------------------

    def _zones(self) -> list[str]:
        existing = self.spec.network.existing_vpc
        if existing is None:
            return self.spec.network.zones(self.aws.region)
        with aws_call("ec2:DescribeSubnets"):
            subnets = self.aws.client("ec2").describe_subnets(SubnetIds=existing.private_subnet_ids)[
                "Subnets"
            ]
        return sorted({s["AvailabilityZone"] for s in subnets})

    def _offered(self, types: Iterable[str]) -> dict[str, set[str]]:
        """Instance type -> zones of the region where it is offered."""
        names = sorted(set(types))
        offered: dict[str, set[str]] = defaultdict(set)
        paginator = self.aws.client("ec2").get_paginator("describe_instance_type_offerings")
        with aws_call("ec2:DescribeInstanceTypeOfferings"):
            for start in range(0, len(names), 100):  # filter values are capped; 100 is well inside
                pages = paginator.paginate(
                    LocationType="availability-zone",
                    Filters=[{"Name": "instance-type", "Values": names[start : start + 100]}],
                )
                for page in pages:
                    for offering in page["InstanceTypeOfferings"]:
                        offered[offering["InstanceType"]].add(offering["Location"])
        return offered

    def _offerings(self) -> list[Result]:
        pools = self.spec.gpu_pools
        if not pools:
            return [Result("offering", "gpu_pools", Status.PASS, "no GPU pools declared")]
        try:
            zones = self._zones()
        except Denied as exc:
            return [_denied("offering", "gpu_pools", exc, "zones of the existing VPC")]
        expanded = {
            (i, selector): launchable(pool, self.gpu_table, selector)
            for i, pool in enumerate(pools)
            for selector in pool.instance_types
        }
        try:
            offered = self._offered(t.name for types in expanded.values() for t in types)
        except Denied as exc:
            return [_denied("offering", "gpu_pools", exc)]
        # A zone that does not exist is the zones check's finding; here it would read as "not offered there".
        try:
            known = self._region_zones()
        except Denied:
            known = None
        usable = [z for z in zones if known is None or z in known]
        if not usable:
            return [
                Result(
                    "offering",
                    "gpu_pools",
                    Status.NOT_CHECKED,
                    "none of the stack's zones exists (see zones)",
                )
            ]
        results = []
        for (i, selector), types in expanded.items():
            subject = f"gpu_pools[{i}] {pools[i].name}: {selector}"
            results.append(_offering_result(subject, selector, [t.name for t in types], usable, offered))
        return results

    def _region_zones(self) -> dict[str, dict[str, Any]]:
        """Zone name -> its DescribeAvailabilityZones entry, for every zone of the region (Local and Wavelength
        Zones included, whatever their opt-in status), asked once per run."""
        if self._zone_cache:
            return self._zone_cache[0]
        with aws_call("ec2:DescribeAvailabilityZones"):
            entries = self.aws.client("ec2").describe_availability_zones(AllAvailabilityZones=True)[
                "AvailabilityZones"
            ]
        zones = {entry["ZoneName"]: entry for entry in entries}
        self._zone_cache.append(zones)
        return zones

    def _zone_check(self) -> list[Result]:
        """Each zone the stack uses: it exists in the region, its State is available, it is opted in, and it
        offers at least one GPU type of each pool (EC2 API Reference, AvailabilityZone: State is available,
        information, impaired, unavailable or constrained; OptInStatus is opt-in-not-required, opted-in or
        not-opted-in)."""
        try:
            zones = self._zones()
            known = self._region_zones()
        except Denied as exc:
            return [_denied("zones", "network", exc)]
        pools = self.spec.gpu_pools
        types_of = {
            pool.name: {
                t.name for selector in pool.instance_types for t in launchable(pool, self.gpu_table, selector)
            }
            for pool in pools
        }
        offered: dict[str, set[str]] = {}
        if pools:
            try:
                offered = self._offered(t for types in types_of.values() for t in types)
            except Denied as exc:
                return [_denied("zones", "network", exc, "GPU offerings per zone")]
        existing = sorted(
            z
            for z, entry in known.items()
            if entry.get("ZoneType", "availability-zone") == "availability-zone"
        )
        results = []
        for zone in zones:
            entry = known.get(zone)
            if entry is None:
                results.append(
                    Result(
                        "zones",
                        zone,
                        Status.FAIL,
                        f"no such zone in {self.aws.region}",
                        f"set network.availability_zones to zones of the region ({', '.join(existing)})",
                    )
                )
                continue
            results.append(self._zone_result(zone, entry, types_of, offered))
        return results

    def _zone_result(
        self, zone: str, entry: dict[str, Any], types_of: dict[str, set[str]], offered: dict[str, set[str]]
    ) -> Result:
        state = entry.get("State", "unknown")
        opt_in = entry.get("OptInStatus", "opt-in-not-required")
        if opt_in == "not-opted-in":
            group = entry.get("GroupName", zone)
            return Result(
                "zones",
                zone,
                Status.FAIL,
                "the zone's group is not opted in",
                f"aws ec2 modify-availability-zone-group --group-name {group} --opt-in-status opted-in "
                f"--region {self.aws.region}",
            )
        if state in ("impaired", "unavailable"):
            messages = "; ".join(m.get("Message", "") for m in entry.get("Messages", []) if m.get("Message"))
            return Result(
                "zones",
                zone,
                Status.FAIL,
                f"the zone is {state}" + (f": {messages}" if messages else ""),
                "wait for AWS to restore it (AWS Health Dashboard), or pick another zone",
            )
        bare = sorted(
            name for name, types in types_of.items() if not any(zone in offered.get(t, set()) for t in types)
        )
        if bare:
            return Result(
                "zones",
                zone,
                Status.WARN,
                f"{state}; offers none of the GPU types of pool(s) {', '.join(bare)}: their nodes can start only "
                "in the other zones",
                "pick zones that offer the pools' types (see the offering rows), or widen the pools' instance_types",
            )
        if state != "available":
            return Result(
                "zones", zone, Status.WARN, f"the zone is {state}", "check the AWS Health Dashboard"
            )
        return Result(
            "zones",
            zone,
            Status.PASS,
            "available" + (", offers every pool's GPU types" if types_of else ""),
        )

    # --- quotas ------------------------------------------------------------------------------------------

    def _quotas(self) -> list[Result]:
        needs, unclassified = quota_needs(self.spec.gpu_pools, self.gpu_table)
        results = [
            Result(
                "quota",
                name,
                Status.NOT_CHECKED,
                "no EC2 GPU quota known for this family; check its quota in the Service Quotas console",
            )
            for name in sorted(unclassified)
        ]
        if not needs:
            return results or [Result("quota", "gpu_pools", Status.PASS, "no GPU pools, no GPU quota needed")]
        client = self.aws.client("service-quotas")
        own, own_denied = self._own_usage()
        for quota, (least, most) in sorted(needs.items(), key=lambda item: item[0].code):
            subject = f"{quota.code} {quota.name}"
            try:
                value, metric = _quota_value(client, quota.code)
            except Denied as exc:
                results.append(_denied("quota", subject, exc))
                continue
            usage = self._usage(metric)
            if usage.value is not None:
                # The pools' own running nodes are part of their need at the maximum, so they are not usage
                # that competes with it (preflight runs before every deploy, also while the pools are busy).
                mine = own.get(quota.code, 0.0)
                note = (
                    f"; {own_denied.permission} denied, so this stack's GPU nodes count as other usage"
                    if own_denied
                    else (f" (this stack's GPU nodes' {mine:g} left out)" if mine else "")
                )
                usage = Usage(max(usage.value - mine, 0.0), usage.reason, usage.denied, note)
            results.append(self._quota_result(quota, subject, value, usage, least, most))
        return results

    def _own_usage(self) -> tuple[dict[str, float], Denied | None]:
        """vCPUs per quota code of the pending and running instances of this stack's GPU pools: the instances
        Karpenter launched for them carry its default tags ``eks:eks-cluster-name`` and ``karpenter.sh/nodepool``
        (aws/karpenter-provider-aws@v1.14.1:website/content/en/docs/concepts/nodeclasses.md, spec.tags)."""
        # Imported here: components pull in the Pulumi SDKs, which the other checks do not need.
        from components.cluster import eks_cluster_name
        from components.environment import Environment

        pools = sorted(pool.name for pool in self.spec.gpu_pools)
        filters = [
            {
                "Name": "tag:eks:eks-cluster-name",
                "Values": [eks_cluster_name(Environment.from_spec(self.spec))],
            },
            {"Name": "tag:karpenter.sh/nodepool", "Values": pools},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
        vcpus = {
            t.name: t.vcpus
            for pool in self.spec.gpu_pools
            for s in pool.instance_types
            for t in launchable(pool, self.gpu_table, s)
        }
        own: dict[str, float] = defaultdict(float)
        try:
            with aws_call("ec2:DescribeInstances"):
                pages = self.aws.client("ec2").get_paginator("describe_instances").paginate(Filters=filters)
                instances = [i for page in pages for r in page["Reservations"] for i in r["Instances"]]
        except Denied as exc:
            return {}, exc
        for instance in instances:
            name = instance["InstanceType"]
            klass = quota_class(name.split(".", 1)[0])
            if klass is None:
                continue
            # Spot instances carry InstanceLifecycle "spot"; On-Demand ones carry none (EC2 API Reference,
            # Instance). A type outside the table counts its cores times threads, as the vCPU quotas do.
            option = "spot" if instance.get("InstanceLifecycle") == "spot" else "on-demand"
            cpu = instance.get("CpuOptions") or {}
            count = vcpus.get(name) or cpu.get("CoreCount", 0) * cpu.get("ThreadsPerCore", 1)
            own[QUOTAS[(klass, option)].code] += float(count)
        return dict(own), None

    def _usage(self, metric: dict[str, Any] | None) -> Usage:
        """The quota's current usage from the CloudWatch metric Service Quotas names for it (``UsageMetric``:
        AWS/Usage ResourceCount with Service, Type, Resource and Class dimensions for the EC2 vCPU quotas), or
        why it is unknown."""
        if not metric or not metric.get("MetricNamespace") or not metric.get("MetricName"):
            return Usage(None, "Service Quotas names no usage metric for this quota")
        # MetricStatisticRecommendation is Sum or Maximum (Service Quotas API Reference, MetricInfo).
        statistic = metric.get("MetricStatisticRecommendation") or "Maximum"
        end = dt.datetime.now(dt.UTC)
        try:
            with aws_call("cloudwatch:GetMetricStatistics"):
                points = self.aws.client(
                    "cloudwatch"
                ).get_metric_statistics(
                    Namespace=metric["MetricNamespace"],
                    MetricName=metric["MetricName"],
                    Dimensions=[
                        {"Name": k, "Value": v} for k, v in sorted(metric.get("MetricDimensions", {}).items())
                    ],
                    StartTime=end - USAGE_WINDOW,
                    EndTime=end,
                    Period=60,  # AWS/Usage metrics are collected every minute (CloudWatch User Guide, usage metrics)
                    Statistics=[statistic],
                )["Datapoints"]
        except Denied as exc:
            return Usage(None, f"{exc.permission} denied", denied=exc)
        latest = max(points, key=lambda p: p["Timestamp"], default=None)
        if latest is None or statistic not in latest:
            minutes = int(USAGE_WINDOW.total_seconds() // 60)
            return Usage(
                None,
                f"CloudWatch has no {metric['MetricNamespace']} {metric['MetricName']} data for the last {minutes} "
                "minutes, so current usage is unknown",
            )
        return Usage(float(latest[statistic]), "")

    def _quota_result(
        self, quota: Quota, subject: str, value: float, usage: Usage, least: int, most: int
    ) -> Result:
        in_use = usage.value or 0.0
        request = (
            f"aws service-quotas request-service-quota-increase --service-code ec2 --quota-code {quota.code} "
            f"--desired-value {math.ceil(in_use + most)} --region {self.aws.region}"
        )
        free = value - in_use
        have = (
            f"{value:g} vCPUs, {in_use:g} in use{usage.note}, {free:g} free"
            if usage.value is not None
            else f"{value:g} vCPUs"
        )
        if free < least:
            return Result(
                "quota",
                subject,
                Status.FAIL,
                f"{have}; the pools at their maximum need at least {least}, up to {most}",
                request,
            )
        if usage.value is None:
            # Enough on paper, but other instances in the account draw from the same quota.
            return Result(
                "quota",
                subject,
                Status.NOT_CHECKED if usage.denied else Status.WARN,
                f"{have} would cover the pools ({least} to {most}) only if nothing else used the quota: "
                f"{usage.reason}",
                f"grant {usage.denied.permission} (docs/live-tooling.md)"
                if usage.denied
                else "see the quota's utilization in the Service Quotas console before deploying",
            )
        if free >= most:
            return Result("quota", subject, Status.PASS, f"{have} cover every pool at its maximum ({most})")
        return Result(
            "quota",
            subject,
            Status.WARN,
            f"{have} cover the pools at their maximum only on the smallest types ({least}); "
            f"the largest allowed types need {most}",
            f"{request} (or narrow the pools' instance_types)",
        )

    # --- Kubernetes version and backend ------------------------------------------------------------------

    def _kubernetes_version(self) -> list[Result]:
        wanted = self.spec.cluster.kubernetes_version
        try:
            versions = _eks_versions(self.aws.client("eks"))
        except Denied as exc:
            return [_denied("kubernetes-version", wanted, exc)]
        status = versions.get(wanted)
        known = ", ".join(sorted(versions, key=lambda v: tuple(int(p) for p in v.split(".")))) or "none"
        if status == "STANDARD_SUPPORT":
            return [Result("kubernetes-version", wanted, Status.PASS, "in standard support")]
        if status == "EXTENDED_SUPPORT":
            return [
                Result(
                    "kubernetes-version",
                    wanted,
                    Status.WARN,
                    "in extended support, which EKS bills extra per cluster hour",
                    f"pin a version in standard support in cluster.kubernetes_version ({known})",
                )
            ]
        return [
            Result(
                "kubernetes-version",
                wanted,
                Status.FAIL,
                f"EKS in {self.aws.region} does not offer {wanted}" + (f" ({status})" if status else ""),
                f"set cluster.kubernetes_version to one of: {known}",
            )
        ]

    def _addon_configuration(self) -> list[Result]:
        """Each add-on configuration of components/cluster.py (CoreDNS's tolerations of the system taint, the
        VPC CNI's network policy switch) against the JSON schema EKS publishes for the pinned add-on version
        (EKS API Reference, DescribeAddonConfiguration ``configurationSchema``). CreateAddon refuses values its
        schema does not allow, which would stop `pulumi up` after the cluster exists; the schema cannot be read
        offline, so it is read here."""
        # Imported here: components pull in the Pulumi SDKs, which the other checks do not need.
        from components.cluster import ADDON_CONFIGURATION
        from mlstack.catalog import eks_addon_versions

        kubernetes = self.spec.cluster.kubernetes_version
        pinned = eks_addon_versions().get(kubernetes, {})
        results = []
        for addon, values in sorted(ADDON_CONFIGURATION.items()):
            version = pinned.get(addon)
            subject = f"{addon} {version}"
            if version is None:
                results.append(
                    Result(
                        "addon-configuration",
                        addon,
                        Status.FAIL,
                        f"no {addon} version pinned for Kubernetes {kubernetes}",
                        "pin one in components/data/eks_addons.yaml",
                    )
                )
                continue
            try:
                with aws_call("eks:DescribeAddonConfiguration"):
                    answer = self.aws.client("eks").describe_addon_configuration(
                        addonName=addon, addonVersion=version
                    )
            except Denied as exc:
                results.append(_denied("addon-configuration", subject, exc))
                continue
            except ClientError as exc:
                results.append(
                    Result(
                        "addon-configuration",
                        subject,
                        Status.FAIL,
                        f"EKS in {self.aws.region} does not describe this version ({error_code(exc)})",
                        f"pin a version that `aws eks describe-addon-versions --addon-name {addon} "
                        f"--kubernetes-version {kubernetes}` lists in components/data/eks_addons.yaml",
                    )
                )
                continue
            results.append(_schema_result(subject, values, answer.get("configurationSchema")))
        return results

    def _backend(self) -> list[Result]:
        url = self.backend_url or os.environ.get("PULUMI_BACKEND_URL")
        if url is None:
            bucket, region = state_bucket_name(self.spec.account_id, self.aws.region), self.aws.region
        else:
            parsed = urlparse(url)
            if parsed.scheme != "s3":
                # Pulumi Cloud (https://api.pulumi.com), a self-hosted service or file://: not an AWS resource.
                # A warning, not "not checked": nothing was denied, and `pulumi up` itself checks the login.
                return [
                    Result(
                        "backend",
                        url,
                        Status.WARN,
                        "not an S3 backend: preflight does not check it; `pulumi up` checks the login",
                        "run `pulumi whoami --verbose` to check it now",
                    )
                ]
            bucket = parsed.netloc
            region = parse_qs(parsed.query).get("region", [self.aws.region])[0]
        subject = f"s3://{bucket}"
        try:
            with aws_call("s3:ListBucket"):
                # ExpectedBucketOwner: a bucket of that name in another account answers 403, never a PASS.
                self.aws.client("s3", region=region).head_bucket(
                    Bucket=bucket, ExpectedBucketOwner=self.spec.account_id
                )
        except Denied as exc:
            return [_denied("backend", subject, exc, "or the bucket belongs to another account")]
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchBucket"):
                return [
                    Result(
                        "backend",
                        subject,
                        Status.FAIL,
                        "the state bucket does not exist",
                        f"mlstack bootstrap --region {region}, or pass --backend-url",
                    )
                ]
            raise
        return [Result("backend", subject, Status.PASS, "reachable")]


# How far back preflight looks for the latest usage datapoint: usage metrics arrive every minute, so an hour
# without one means CloudWatch has nothing to say, not that the last minute was late.
USAGE_WINDOW = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Usage:
    """A quota's current usage, or ``None`` with the reason it is unknown (``denied`` when a call was)."""

    value: float | None
    reason: str
    denied: Denied | None = None
    # What the value leaves out (this stack's own GPU nodes), for the row's message.
    note: str = ""


def launchable(pool: GpuPoolSpec, table: GpuTable, selector: str) -> list[GpuType]:
    """The types of ``selector`` the pool can launch: with ``efa``, only the EFA sizes, as the NodePool
    (GpuPoolSpec.resolved_types, components/gpu.py) restricts it."""
    return [t for t in table.expand(selector) if t.efa or not pool.efa]


def quota_needs(
    pools: Sequence[GpuPoolSpec], table: GpuTable
) -> tuple[dict[Quota, tuple[int, int]], set[str]]:
    """vCPUs each quota must allow with every pool at max_gpus: (on the leanest types, on the widest types).

    A pool may end up all on one class of its types, so each class is counted at the pool's full maximum.
    Families outside the G and P quotas are returned apart, to be reported as not checked.
    """
    needs: dict[Quota, list[int]] = defaultdict(lambda: [0, 0])
    unclassified: set[str] = set()
    for pool in pools:
        ratios: dict[str, list[float]] = defaultdict(list)
        for selector in pool.instance_types:
            for gpu_type in launchable(pool, table, selector):
                klass = quota_class(gpu_type.family)
                if klass is None:
                    unclassified.add(gpu_type.family)
                    continue
                ratios[klass].append(gpu_type.vcpus / gpu_type.gpu_count)
        for klass, per_gpu in ratios.items():
            least = math.ceil(min(per_gpu) * pool.max_gpus)
            most = math.ceil(max(per_gpu) * pool.max_gpus)
            for option in PURCHASE_OPTIONS[pool.capacity_type]:
                need = needs[QUOTAS[(klass, option)]]
                need[0] += least
                need[1] += most
    return {quota: (least, most) for quota, (least, most) in needs.items()}, unclassified


def _quota_value(client: Any, code: str) -> tuple[float, dict[str, Any] | None]:
    """The quota's value and its ``UsageMetric`` (Service Quotas API Reference, ServiceQuota and MetricInfo)."""
    try:
        with aws_call("servicequotas:GetServiceQuota"):
            quota = client.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]
    except ClientError as exc:
        # An account that never changed a quota may have no applied value yet: the default then holds.
        if error_code(exc) != "NoSuchResourceException":
            raise
        with aws_call("servicequotas:GetAWSDefaultServiceQuota"):
            quota = client.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]
    return float(quota["Value"]), quota.get("UsageMetric")


def _eks_versions(eks: Any) -> dict[str, str]:
    """Kubernetes version -> EKS support status in the client's region."""
    versions: dict[str, str] = {}
    with aws_call("eks:DescribeClusterVersions"):
        for page in eks.get_paginator("describe_cluster_versions").paginate(clusterType="eks"):
            for entry in page["clusterVersions"]:
                versions[entry["clusterVersion"]] = entry.get("versionStatus") or entry.get(
                    "status", ""
                ).upper().replace("-", "_")
    return versions


def _offering_result(
    subject: str, selector: str, types: list[str], zones: list[str], offered: dict[str, set[str]]
) -> Result:
    chosen = set(zones)
    missing_everywhere = [t for t in types if not offered.get(t, set()) & chosen]
    partial = {t: sorted(chosen - offered.get(t, set())) for t in types if t not in missing_everywhere}
    partial = {t: gaps for t, gaps in partial.items() if gaps}
    elsewhere = sorted({z for t in types for z in offered.get(t, set())} - chosen)
    hint = (
        f"offered in other zones of the region: {', '.join(elsewhere)}"
        if elsewhere
        else "not offered in this region"
    )
    is_family = len(types) > 1 or types != [selector]
    if missing_everywhere and (not is_family or len(missing_everywhere) == len(types)):
        return Result(
            "offering",
            subject,
            Status.FAIL,
            f"{', '.join(missing_everywhere)} not offered in {', '.join(zones)}",
            f"{hint}; set network.availability_zones to zones that offer it, or replace {selector} in the pool",
        )
    if missing_everywhere or partial:
        gaps = [f"{t} not in any chosen zone" for t in missing_everywhere]
        gaps += [f"{t} not in {', '.join(z)}" for t, z in partial.items()]
        return Result(
            "offering",
            subject,
            Status.WARN,
            "; ".join(gaps) + "; Karpenter launches only where offered",
            hint if elsewhere else "",
        )
    return Result("offering", subject, Status.PASS, f"{len(types)} type(s) offered in {', '.join(zones)}")


def cost_allocation_tag_results(
    statuses: dict[str, str], needed_by_budgets: Sequence[str], wanted: Sequence[str]
) -> list[Result]:
    """One row per wanted tag key from ``statuses`` (tag key -> Active/Inactive, as ListCostAllocationTags
    returns them; a key absent from billing data is missing). A tag a budget filters on fails when it is not
    active: that budget reads $0. The others only warn."""
    results: list[Result] = []
    for key in wanted:
        status = statuses.get(key)
        failing = Status.FAIL if key in needed_by_budgets else Status.WARN
        activate = (
            "in the management (payer) account: aws ce update-cost-allocation-tags-status "
            f"--cost-allocation-tags-status TagKey={key},Status=Active (docs/logs-and-cost.md)"
        )
        if status == "Active":
            results.append(Result("cost-allocation-tags", key, Status.PASS, "active"))
        elif status is None:
            results.append(
                Result(
                    "cost-allocation-tags",
                    key,
                    failing,
                    "not in the billing data yet: a tag can be activated only once a tagged resource has been billed "
                    "(up to 24 hours after the first deploy)",
                    activate,
                )
            )
        else:
            results.append(
                Result(
                    "cost-allocation-tags",
                    key,
                    failing,
                    f"{status}: budgets filtering on it read $0",
                    activate,
                )
            )
    return results


def _schema_result(subject: str, values: dict[str, Any], schema_text: str | None) -> Result:
    """Our configuration values against an add-on version's configuration schema (a JSON Schema document)."""
    if not schema_text:
        return Result(
            "addon-configuration",
            subject,
            Status.FAIL,
            "EKS publishes no configuration schema for this version, so it accepts no configuration values",
            "pin a version that has one, or drop its entry from components/cluster.py ADDON_CONFIGURATION",
        )
    try:
        schema = json.loads(schema_text)
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except (ValueError, jsonschema.SchemaError) as exc:
        return Result(
            "addon-configuration", subject, Status.NOT_CHECKED, f"the published schema does not parse: {exc}"
        )
    errors = sorted(validator_class(schema).iter_errors(values), key=lambda e: list(e.absolute_path))
    if errors:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}" for e in errors[:3]
        )
        return Result(
            "addon-configuration",
            subject,
            Status.FAIL,
            f"CreateAddon would refuse mlstack's configuration values: {where}",
            "change components/cluster.py ADDON_CONFIGURATION to what `aws eks describe-addon-configuration "
            "--addon-name ... --addon-version ...` allows, or pin another version in components/data/eks_addons.yaml",
        )
    return Result(
        "addon-configuration", subject, Status.PASS, f"{', '.join(sorted(values))} allowed by the schema"
    )


def sso_secret_result(subject: str, secret: dict[str, Any], operator_key: str | None) -> Result:
    """One described SSO secret: scheduled for deletion, or encrypted with a key the operator may not use, fails."""
    if secret.get("DeletedDate"):
        return Result(
            "sso-secrets",
            subject,
            Status.FAIL,
            f"scheduled for deletion on {secret['DeletedDate']}",
            f"aws secretsmanager restore-secret --secret-id {secret.get('Name', subject)}",
        )
    # botocore secretsmanager DescribeSecretResponse.KmsKeyId: "The key ID or alias ARN of the KMS key ...
    # If the secret is encrypted with the AWS managed key aws/secretsmanager, this field is omitted."
    key = secret.get("KmsKeyId")
    if key and (operator_key is None or not (key == operator_key or operator_key.endswith(f":key/{key}"))):
        if ":alias/" in key:
            # An alias cannot be compared with the key's ARN without kms:DescribeKey, which preflight does not hold.
            return Result(
                "sso-secrets",
                subject,
                Status.WARN,
                f"encrypted with {key}; the operator can decrypt only if external_secrets.kms_key_arn is the key it "
                "names",
                f"aws kms describe-key --key-id {key}, and set external_secrets.kms_key_arn to its KeyMetadata.Arn",
            )
        return Result(
            "sso-secrets",
            subject,
            Status.FAIL,
            f"encrypted with {key}, which the operator's role may not decrypt with",
            "set external_secrets.kms_key_arn to that key's ARN in the stack file",
        )
    return Result("sso-secrets", subject, Status.PASS, f"exists ({secret.get('ARN', '')})")


def _denied(rule: str, subject: str, exc: Denied, note: str = "") -> Result:
    detail = f"{exc.permission} denied" + (f" ({note})" if note else "")
    return Result(rule, subject, Status.NOT_CHECKED, detail, f"grant {exc.permission} (docs/live-tooling.md)")
