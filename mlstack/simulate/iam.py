"""IAM policy evaluation for the deploy simulation: a small evaluator over the plan's recorded policies.

It follows AWS's "Policy evaluation logic" for requests within one account
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html and
reference_policies_evaluation-logic_policy-eval-denyallow.html):

1. An explicit ``Deny`` in any applicable policy (identity, permissions boundary, resource policy) wins.
2. A resource-based policy that allows the principal's ARN grants access on its own (same account), but for a
   role under a permissions boundary the boundary still has to allow it: "an implicit deny in a permissions
   boundary does limit the permissions granted to the ARN of the underlying IAM role by the resource-based
   policy" (access_policies_boundaries.html, "Resource-based policies"). A resource policy that names the
   account root only delegates to IAM.
3. Otherwise an identity-based policy must allow, and, for a bounded principal, the boundary too.
4. KMS is the exception: the key policy must allow, either the principal directly or the account root, in
   which case IAM policies decide as in 3 (kms/latest/developerguide/key-policy-default.html, "Allows access to
   the AWS account and enables IAM policies").

Conditions are evaluated with three values: a statement matches, does not match, or *cannot be evaluated*
because a condition key is not in the request context and the evaluator cannot know whether AWS would
supply it. Such a request is reported as undecided, never allowed. Missing-key semantics are AWS's
(reference_policies_elements_condition_operators.html): a key absent from the context makes a positive
operator false and a negated one (``StringNotEquals``, ``ArnNotLike``, ...) true; ``...IfExists`` is true
and ``Null`` tests presence; ``ForAllValues`` over an absent key is true, ``ForAnyValue`` false
(reference_policies_condition-single-vs-multi-valued-context-keys.html).

Out of scope, and said so in docs/simulation.md: SCPs and RCPs (the stack manages no organization), session
policies, cross-account requests, policy variables (``${...}``; a statement using one cannot be evaluated)
and the ``Date*``/``IpAddress``/``Binary`` operators (reported as cannot evaluate).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from mlstack.simulate.framework import World, derived
from mlstack.yaml_loading import fast_safe_load

# Tri-state match: True, False, or None for "cannot evaluate".
Tri = bool | None

_MANAGED_PREFIX = "arn:aws:iam::aws:policy/"
_MANAGED_FILE = Path(__file__).resolve().parent.parent / "data" / "aws_managed_policies.yaml"


class Decision(Enum):
    ALLOW = "allowed"
    EXPLICIT_DENY = "explicitly denied"
    IMPLICIT_DENY = "implicitly denied"
    UNKNOWN = "cannot be evaluated"


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    principals: Mapping[str, tuple[str, ...]] | None
    not_principals: Mapping[str, tuple[str, ...]] | None
    condition: Mapping[str, Mapping[str, tuple[str, ...]]]


@dataclass(frozen=True)
class Policy:
    """One policy document, named for messages (``role X inline 'name'``), with the plan resource holding it."""

    name: str
    urn: str | None
    statements: tuple[Statement, ...]
    # A policy the plan references but whose document it does not hold: it can neither allow nor be ruled out.
    opaque: bool = False

    @classmethod
    def parse(cls, name: str, urn: str | None, document: Any) -> Policy:
        doc = decode(document)
        raw = doc.get("Statement", []) if isinstance(doc, dict) else []
        if isinstance(raw, dict):
            raw = [raw]
        return cls(name, urn, tuple(_statement(i, s) for i, s in enumerate(raw)))


def decode(value: Any) -> Any:
    """A recorded input that holds JSON: provider objects and policy documents arrive as JSON strings, some
    encoded twice (a JSON string of a JSON string)."""
    while isinstance(value, str) and value[:1] in ('"', "{", "["):
        try:
            value = json.loads(value)
        except ValueError:
            break
    return value


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(_scalar(v) for v in value)
    return (_scalar(value),)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _principal(value: Any) -> Mapping[str, tuple[str, ...]] | None:
    if value is None:
        return None
    if value == "*":
        return {"*": ("*",)}
    return {kind: _strings(v) for kind, v in dict(value).items()}


def _statement(index: int, raw: Mapping[str, Any]) -> Statement:
    def opt(key: str) -> tuple[str, ...] | None:
        return _strings(raw[key]) if key in raw else None

    condition = {
        op: {key: _strings(values) for key, values in dict(keys).items()}
        for op, keys in dict(raw.get("Condition") or {}).items()
    }
    return Statement(
        sid=str(raw.get("Sid") or f"#{index}"),
        effect=str(raw.get("Effect", "")),
        actions=opt("Action"),
        not_actions=opt("NotAction"),
        resources=opt("Resource"),
        not_resources=opt("NotResource"),
        principals=_principal(raw.get("Principal")),
        not_principals=_principal(raw.get("NotPrincipal")),
        condition=condition,
    )


# ---- matching ------------------------------------------------------------------------------------------


@cache
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards are only * and ? (no character classes), so [ and ] must stay literal.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


@lru_cache(maxsize=65536)
def like(value: str, pattern: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard match: ``*`` any run of characters, ``?`` one character."""
    return bool(_glob(pattern, ignore_case).match(value))


def action_matches(action: str, patterns: Iterable[str]) -> bool:
    """Action names are case-insensitive (reference_policies_elements_action.html)."""
    return any(like(action, p, ignore_case=True) for p in patterns)


def resource_matches(resource: str, patterns: Iterable[str]) -> bool:
    return any(like(resource, p) for p in patterns)


def _arn_like(value: str, pattern: str) -> bool:
    """ArnLike compares each of the six colon-separated ARN parts with wildcards
    (reference_policies_elements_condition_operators.html, "ARN condition operators")."""
    parts, wanted = value.split(":", 5), pattern.split(":", 5)
    if len(parts) != 6 or len(wanted) != 6:
        return False
    return all(like(p, w) for p, w in zip(parts, wanted, strict=True))


# ---- requests ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One API call: the action, the resource ARN, and the request context.

    ``context`` maps condition keys (any case) to their values; a key mapped to ``()`` is known to be absent.
    ``absent_prefixes`` declares whole families known to be absent when not listed (a request that lists its
    tags knows every other ``aws:RequestTag/...`` is absent). Any other key a condition asks for is unknown.
    """

    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    absent_prefixes: tuple[str, ...] = ()

    def lookup(self, key: str) -> tuple[str, ...] | None:
        """The key's values, ``()`` if known absent, ``None`` if the evaluator cannot know."""
        lowered = key.lower()
        for known, values in self.context.items():
            if known.lower() == lowered:
                return values
        if any(lowered.startswith(prefix.lower()) for prefix in self.absent_prefixes):
            return ()
        return None


_NUMERIC = {
    "NumericEquals": lambda a, b: a == b,
    "NumericNotEquals": lambda a, b: a != b,  # listed for _SUPPORTED_BASES; evaluated as NOT NumericEquals
    "NumericLessThan": lambda a, b: a < b,
    "NumericLessThanEquals": lambda a, b: a <= b,
    "NumericGreaterThan": lambda a, b: a > b,
    "NumericGreaterThanEquals": lambda a, b: a >= b,
}
_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
    "NumericNotEquals",
}


def _value_matches(base: str, actual: str, wanted: str) -> Tri:
    """Whether one context value satisfies one policy value under the positive form of ``base``."""
    positive = base.replace("Not", "", 1) if base in _NEGATED else base
    if positive == "StringEquals":
        return actual == wanted
    if positive == "StringEqualsIgnoreCase":
        return actual.lower() == wanted.lower()
    if positive == "StringLike":
        return like(actual, wanted)
    if positive in ("ArnEquals", "ArnLike"):
        return _arn_like(actual, wanted)
    if positive == "Bool":
        return actual.lower() == wanted.lower()
    if positive in _NUMERIC:
        try:
            return bool(_NUMERIC[positive](float(actual), float(wanted)))
        except ValueError:
            return False
    return None


def _operator_holds(base: str, actual: str, wanted: Sequence[str]) -> Tri:
    results = [_value_matches(base, actual, w) for w in wanted]
    if any(r is None for r in results):
        return None
    hit = any(results)
    # A negated operator with several values is their NOR (reference_policies_multi-value-conditions.html).
    return not hit if base in _NEGATED else hit


_SUPPORTED_BASES = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "ArnEquals",
    "ArnNotEquals",
    "ArnLike",
    "ArnNotLike",
    "Bool",
    *_NUMERIC,
}


@dataclass(frozen=True)
class ConditionResult:
    holds: Tri
    unknown: tuple[str, ...] = ()


def evaluate_condition(condition: Mapping[str, Mapping[str, Any]], request: Request) -> ConditionResult:
    """AND over operators and keys, OR over a key's values; a key the request cannot supply makes the whole
    condition undecided unless another part is already false. Values may be a string or a list, as in JSON."""
    unknown: list[str] = []
    for op, raw_keys in condition.items():
        keys = {key: _strings(values) for key, values in raw_keys.items()}
        qualifier, _, base = op.rpartition(":")
        if_exists = base.endswith("IfExists")
        if if_exists:
            base = base[: -len("IfExists")]
        for key, wanted in keys.items():
            if any("${" in w for w in wanted):
                unknown.append(f"{key} (policy variable in {op})")
                continue
            actual = request.lookup(key)
            if base == "Null":
                if actual is None:
                    unknown.append(key)
                    continue
                want_absent = wanted and wanted[0].lower() == "true"
                if (not actual) != bool(want_absent):
                    return ConditionResult(False)
                continue
            if base not in _SUPPORTED_BASES:
                unknown.append(f"{key} (operator {op} not modelled)")
                continue
            if actual is None:
                unknown.append(key)
                continue
            if not actual:
                if if_exists or qualifier == "ForAllValues":
                    continue
                if qualifier == "ForAnyValue":
                    return ConditionResult(False)
                if base in _NEGATED:
                    continue
                return ConditionResult(False)
            if qualifier == "ForAllValues":
                results = [_operator_holds(base, a, wanted) for a in actual]
                holds: Tri = None if None in results else all(results)
            elif qualifier == "ForAnyValue":
                results = [_operator_holds(base, a, wanted) for a in actual]
                holds = True if any(r is True for r in results) else (None if None in results else False)
            else:
                results = [_operator_holds(base, a, wanted) for a in actual]
                if base in _NEGATED:
                    holds = None if None in results else all(results)
                else:
                    holds = True if any(r is True for r in results) else (None if None in results else False)
            if holds is None:
                unknown.append(f"{key} (operator {op})")
            elif not holds:
                return ConditionResult(False)
    if unknown:
        return ConditionResult(None, tuple(unknown))
    return ConditionResult(True)


# ---- principals ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who calls: an IAM role (its identity policies and boundary), or an AWS service principal."""

    arn: str
    account: str
    urn: str | None = None
    identity: tuple[Policy, ...] = ()
    boundary: Policy | None = None
    service: str | None = None
    # Managed policies attached but unknown to the evaluator (their document is not in the vendored copy).
    missing_managed: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.service or self.arn.rsplit("/", 1)[-1]


def _principal_matches(principals: Mapping[str, tuple[str, ...]], principal: Principal) -> tuple[bool, bool]:
    """(matches, direct): whether a resource policy's Principal covers the caller, and whether it names the
    caller itself (a grant) rather than its account (a delegation to IAM)."""
    root = f"arn:aws:iam::{principal.account}:root"
    for kind, values in principals.items():
        if kind == "*" or (kind == "AWS" and "*" in values):
            return True, True
        if kind == "Service" and principal.service and principal.service in values:
            return True, True
        if kind == "AWS" and principal.service is None:
            if principal.arn in values:
                return True, True
            if root in values or principal.account in values:
                return True, False
    return False, False


def _statement_applies(stmt: Statement, request: Request) -> bool:
    if stmt.actions is not None and not action_matches(request.action, stmt.actions):
        return False
    if stmt.not_actions is not None and action_matches(request.action, stmt.not_actions):
        return False
    # A resource policy statement without Resource (ECR, and key policies' "*") means the resource itself.
    if stmt.resources is not None and not resource_matches(request.resource, stmt.resources):
        return False
    if stmt.not_resources is not None and resource_matches(request.resource, stmt.not_resources):
        return False
    return True


@dataclass(frozen=True)
class Hit:
    """A statement that matched (or may match) the request."""

    policy: Policy
    statement: Statement
    holds: Tri
    unknown: tuple[str, ...]
    direct: bool = True

    def describe(self) -> str:
        return f"{self.policy.name} statement '{self.statement.sid}'"


def _hits(policies: Iterable[Policy], request: Request, principal: Principal | None = None) -> Iterator[Hit]:
    for policy in policies:
        for stmt in policy.statements:
            if not _statement_applies(stmt, request):
                continue
            direct = True
            if principal is not None:
                if stmt.principals is not None:
                    matches, direct = _principal_matches(stmt.principals, principal)
                    if not matches:
                        continue
                elif stmt.not_principals is not None:
                    matches, _ = _principal_matches(stmt.not_principals, principal)
                    if matches:
                        continue
            result = evaluate_condition(stmt.condition, request)
            if result.holds is False:
                continue
            yield Hit(policy, stmt, result.holds, result.unknown, direct)


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str
    # The policy to blame: for a deny the one whose statement denies or lacks the allow, for an allow the
    # policy whose statement allows.
    culprit: Policy | None = None

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


def _allow(hits: Sequence[Hit]) -> Tri:
    allows = [h for h in hits if h.statement.effect == "Allow"]
    if any(h.holds for h in allows):
        return True
    return None if allows else False


def _unknown_reason(hits: Sequence[Hit]) -> str:
    keys = sorted({k for h in hits if h.holds is None for k in h.unknown})
    where = ", ".join(sorted({h.describe() for h in hits if h.holds is None}))
    return f"cannot evaluate condition key(s) {', '.join(keys)} ({where})"


def evaluate(
    principal: Principal,
    request: Request,
    resource_policy: Policy | None = None,
    *,
    kms_key_policy: bool = False,
) -> Verdict:
    """The decision AWS would reach for ``principal`` making ``request`` in the same account.

    ``resource_policy`` is the policy attached to the resource (bucket, key, repository, queue, secret), if
    any; with ``kms_key_policy`` it is a key policy, which must allow on its own.
    """
    request = _with_principal_keys(principal, request)
    identity = list(_hits(principal.identity, request))
    boundary = list(_hits([principal.boundary], request)) if principal.boundary else []
    resource = list(_hits([resource_policy], request, principal)) if resource_policy else []
    everything = identity + boundary + resource

    denies = [h for h in everything if h.statement.effect == "Deny"]
    for hit in denies:
        if hit.holds:
            return Verdict(Decision.EXPLICIT_DENY, f"explicitly denied by {hit.describe()}", hit.policy)
    deny_unknown = [h for h in denies if h.holds is None]

    if principal.service is not None:
        # A service principal is only ever allowed by the resource policy that names it.
        allowed = _allow(resource)
        return _conclude(allowed, deny_unknown, resource, resource_policy, "the resource policy")

    boundary_allows: Tri = True if principal.boundary is None else _allow(boundary)
    if principal.boundary is not None and principal.boundary.opaque and boundary_allows is False:
        boundary_allows = None
    identity_allows = _allow(identity)
    direct_grant = _allow([h for h in resource if h.direct])
    delegated = _allow([h for h in resource if not h.direct])

    if kms_key_policy:
        # The key policy must allow: directly, or by delegating to the account's IAM policies.
        if direct_grant is True and boundary_allows is True:
            return _conclude(True, deny_unknown, everything, None, "")
        iam_path = _and(identity_allows, boundary_allows)
        key_path = _or(direct_grant, _and(delegated, iam_path))
        key_path = _and(key_path, boundary_allows)
        if key_path is False:
            if direct_grant is False and delegated is False:
                return Verdict(
                    Decision.IMPLICIT_DENY,
                    f"no statement of {resource_policy.name if resource_policy else 'the key policy'} allows it "
                    "(a key policy must allow, directly or through the account root)",
                    resource_policy,
                )
            return _iam_denial(principal, identity_allows, boundary_allows)
        return _conclude(key_path, deny_unknown, everything, resource_policy, "")

    # Same account: a resource policy naming the principal is enough, within the boundary; otherwise IAM decides.
    granted = _or(_and(direct_grant, boundary_allows), _and(identity_allows, boundary_allows))
    if granted is False:
        return _iam_denial(principal, identity_allows, boundary_allows)
    return _conclude(granted, deny_unknown, everything, None, "")


def _and(a: Tri, b: Tri) -> Tri:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def _or(a: Tri, b: Tri) -> Tri:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def _iam_denial(principal: Principal, identity_allows: Tri, boundary_allows: Tri) -> Verdict:
    if boundary_allows is False and principal.boundary is not None:
        return Verdict(
            Decision.IMPLICIT_DENY,
            f"outside the {principal.boundary.name} (no Allow statement of it covers the call)",
            principal.boundary,
        )
    missing = f"; attached managed policies not modelled: {', '.join(principal.missing_managed)}"
    return Verdict(
        Decision.IMPLICIT_DENY if not principal.missing_managed else Decision.UNKNOWN,
        f"no identity policy of role {principal.name} allows it"
        + (missing if principal.missing_managed else ""),
        None,
    )


def _conclude(
    allowed: Tri, deny_unknown: Sequence[Hit], hits: Sequence[Hit], culprit: Policy | None, what: str
) -> Verdict:
    if allowed is False:
        return Verdict(Decision.IMPLICIT_DENY, f"no statement of {what} allows it", culprit)
    if allowed is None or deny_unknown:
        return Verdict(Decision.UNKNOWN, _unknown_reason([*hits, *deny_unknown]), culprit)
    grants = [h for h in hits if h.statement.effect == "Allow" and h.holds]
    # Blame the most specific grant: a resource or identity policy before the boundary (a ceiling).
    grants.sort(key=lambda h: h.policy.name.startswith("permissions boundary"))
    first = grants[0] if grants else None
    return Verdict(
        Decision.ALLOW,
        f"allowed by {first.describe()}" if first else "allowed",
        first.policy if first else None,
    )


def _with_principal_keys(principal: Principal, request: Request) -> Request:
    """Add the global keys every request carries (reference_policies_condition-keys.html): the caller's
    ARN and account. For a role session ``aws:PrincipalArn`` is the role's ARN."""
    ctx = dict(request.context)
    if principal.service is None:
        ctx.setdefault("aws:PrincipalArn", (principal.arn,))
        ctx.setdefault("aws:PrincipalAccount", (principal.account,))
    else:
        ctx.setdefault("aws:PrincipalServiceName", (principal.service,))
    return Request(request.action, request.resource, ctx, request.absent_prefixes)


# ---- the plan's policies -------------------------------------------------------------------------------


@cache
def managed_policies() -> dict[str, Any]:
    """AWS managed policy documents the platform attaches, by name (copied from moto 5.2.5
    ``moto/iam/aws_managed_policies.py``; tests check the copy against it)."""
    with _MANAGED_FILE.open(encoding="utf-8") as handle:
        return dict(fast_safe_load(handle)["policies"])


@dataclass(frozen=True)
class Access:
    """Everything the evaluator needs from one plan: principals by role name and ARN, resource policies by
    resource ARN, and the KMS key ARNs (whose policies follow the key-policy rule)."""

    account: str
    region: str
    roles: Mapping[str, Principal]
    resource_policies: Mapping[str, Policy]
    key_arns: frozenset[str]
    # Bucket ARN -> default encryption (algorithm, key ARN or "") from BucketServerSideEncryptionConfiguration.
    bucket_encryption: Mapping[str, tuple[str, str]]
    # Key ARN -> the region of the provider that creates it (mocked ARNs all carry the home region).
    key_regions: Mapping[str, str]
    # Bucket ARN -> its region, likewise from its provider.
    bucket_regions: Mapping[str, str]
    # Role name -> its trust policy (the resource policy of sts:AssumeRole only).
    trust_policies: Mapping[str, Policy]

    def role(self, name: str) -> Principal:
        return self.roles[name]

    def roles_like(self, pattern: str) -> list[Principal]:
        return [p for n, p in sorted(self.roles.items()) if like(n, pattern)]

    def service(self, service: str) -> Principal:
        return Principal(arn=service, account=self.account, service=service)

    def resource_policy(self, resource: str) -> Policy | None:
        """The resource policy governing ``resource``: exact, or the bucket's for an object ARN, or the
        repository's / registry's for an ECR repository."""
        if resource in self.resource_policies:
            return self.resource_policies[resource]
        if resource.startswith("arn:aws:s3:::") and "/" in resource:
            return self.resource_policies.get(resource.split("/", 1)[0])
        return None

    def requested_region(self, resource: str) -> str:
        """``aws:RequestedRegion`` of a call on ``resource``: the key's or bucket's region, the ARN's region,
        us-east-1 for IAM (a global service whose endpoint is there), else the environment's region."""
        if resource in self.key_regions:
            return self.key_regions[resource]
        parts = resource.split(":")
        if len(parts) >= 6:
            if parts[2] in ("iam", "sts") and not parts[3]:
                return "us-east-1"
            if parts[2] == "s3" and not parts[3]:
                return self.bucket_regions.get(resource.split("/", 1)[0], self.region)
            if parts[3]:
                return parts[3]
        return self.region

    def complete(self, request: Request) -> Request:
        """The request with the global keys AWS always supplies that the catalogue leaves out."""
        if request.lookup("aws:RequestedRegion") is not None:
            return request
        ctx = {**request.context, "aws:RequestedRegion": (self.requested_region(request.resource),)}
        return Request(request.action, request.resource, ctx, request.absent_prefixes)

    def check(self, principal: Principal, request: Request) -> Verdict:
        request = self.complete(request)
        policy = self.resource_policy(request.resource)
        return evaluate(principal, request, policy, kms_key_policy=request.resource in self.key_arns)


def _arn(resource: Any) -> str:
    return str((resource.outputs or {}).get("arn", ""))


@derived
def access(world: World) -> Access:
    """The principals and resource policies of the plan, read once per world."""
    plan = world.plan
    account = world.spec.account_id if hasattr(world.spec, "account_id") else ""
    region = world.spec.region if hasattr(world.spec, "region") else ""
    policies_by_arn: dict[str, tuple[str, Any, str | None]] = {}
    for r in plan.by_type("aws:iam/policy:Policy"):
        policies_by_arn[_arn(r)] = (str(r.inputs.get("name", r.name)), r.inputs.get("policy"), r.urn)
    inline: dict[str, list[Policy]] = {}
    for r in plan.by_type("aws:iam/rolePolicy:RolePolicy"):
        role = str(r.inputs.get("role", ""))
        label = f"role {role} inline policy '{r.inputs.get('name', r.name)}'"
        inline.setdefault(role, []).append(Policy.parse(label, r.urn, r.inputs.get("policy")))
    attached: dict[str, list[tuple[str, str]]] = {}
    for r in plan.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        attached.setdefault(str(r.inputs.get("role", "")), []).append(
            (str(r.inputs.get("policyArn", "")), r.urn)
        )
    managed = managed_policies()
    roles: dict[str, Principal] = {}
    for r in plan.by_type("aws:iam/role:Role"):
        name = str(r.inputs.get("name", r.name))
        arn = _arn(r) or f"arn:aws:iam::{account}:role/{name}"
        account = account or arn.split(":")[4]
        identity = list(inline.get(name, []))
        for index, doc in enumerate(r.inputs.get("inlinePolicies") or []):
            identity.append(Policy.parse(f"role {name} inline policy #{index}", r.urn, doc.get("policy")))
        missing: list[str] = []
        for policy_arn, urn in attached.get(name, []):
            if policy_arn.startswith(_MANAGED_PREFIX):
                short = policy_arn[len(_MANAGED_PREFIX) :]
                if short in managed:
                    identity.append(
                        Policy.parse(f"AWS managed policy {short} (on role {name})", urn, managed[short])
                    )
                else:
                    missing.append(short)
            elif policy_arn in policies_by_arn:
                label, doc, policy_urn = policies_by_arn[policy_arn]
                identity.append(Policy.parse(f"policy {label} (on role {name})", policy_urn, doc))
            else:
                missing.append(policy_arn)
        boundary = None
        boundary_arn = r.inputs.get("permissionsBoundary")
        if boundary_arn:
            label, doc, policy_urn = policies_by_arn.get(str(boundary_arn), (str(boundary_arn), None, None))
            boundary = Policy.parse(f"permissions boundary {label}", policy_urn, doc or {"Statement": []})
            if doc is None:
                boundary = Policy(f"permissions boundary {label} (not in the plan)", None, (), opaque=True)
        roles[name] = Principal(
            arn=arn,
            account=arn.split(":")[4],
            urn=r.urn,
            identity=tuple(identity),
            boundary=boundary,
            missing_managed=tuple(missing),
        )
    resource_policies: dict[str, Policy] = {}
    key_arns: set[str] = set()
    buckets = {str(r.id): _arn(r) for r in plan.by_type("aws:s3/bucket:Bucket")}
    provider_regions = {
        r.urn: str(r.inputs.get("region", "")) for r in plan.resources if r.type == "pulumi:providers:aws"
    }

    def region_of(resource: Any) -> str:
        return provider_regions.get((resource.provider or "").rsplit("::", 1)[0], "") or region

    bucket_regions = {_arn(r): region_of(r) for r in plan.by_type("aws:s3/bucket:Bucket")}
    bucket_by_name = {str(r.inputs.get("bucket", "")): _arn(r) for r in plan.by_type("aws:s3/bucket:Bucket")}

    def bucket_arn(ref: Any) -> str:
        return buckets.get(str(ref)) or bucket_by_name.get(str(ref)) or f"arn:aws:s3:::{ref}"

    key_regions: dict[str, str] = {}
    for r in plan.by_type("aws:kms/key:Key"):
        key_arns.add(_arn(r))
        key_regions[_arn(r)] = region_of(r)
        resource_policies[_arn(r)] = Policy.parse(
            f"key policy of {r.name}", r.urn, r.inputs.get("policy") or {}
        )
    for r in plan.by_type("aws:s3/bucketPolicy:BucketPolicy"):
        arn = bucket_arn(r.inputs.get("bucket"))
        resource_policies[arn] = Policy.parse(f"bucket policy {r.name}", r.urn, r.inputs.get("policy"))
    repos = {str(r.inputs.get("name", "")): _arn(r) for r in plan.by_type("aws:ecr/repository:Repository")}
    for r in plan.by_type("aws:ecr/repositoryPolicy:RepositoryPolicy"):
        arn = repos.get(str(r.inputs.get("repository", "")), "")
        if arn:
            resource_policies[arn] = Policy.parse(
                f"repository policy {r.name}", r.urn, r.inputs.get("policy")
            )
    queues = {str(r.id): _arn(r) for r in plan.by_type("aws:sqs/queue:Queue")}
    for r in plan.by_type("aws:sqs/queuePolicy:QueuePolicy"):
        arn = queues.get(str(r.inputs.get("queueUrl", "")), "")
        if arn:
            resource_policies[arn] = Policy.parse(f"queue policy {r.name}", r.urn, r.inputs.get("policy"))
    for r in plan.by_type("aws:secretsmanager/secretPolicy:SecretPolicy"):
        arn = str(r.inputs.get("secretArn", ""))
        resource_policies[arn] = Policy.parse(f"secret policy {r.name}", r.urn, r.inputs.get("policy"))
    encryption: dict[str, tuple[str, str]] = {}
    for r in plan.by_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ):
        rules = decode(r.inputs.get("rules")) or []
        default = (rules[0] or {}).get("applyServerSideEncryptionByDefault") or {} if rules else {}
        encryption[bucket_arn(r.inputs.get("bucket"))] = (
            str(default.get("sseAlgorithm", "")),
            str(default.get("kmsMasterKeyId", "")),
        )
    return Access(
        account=account,
        region=region,
        roles=roles,
        resource_policies=resource_policies,
        key_arns=frozenset(key_arns),
        bucket_encryption=encryption,
        key_regions=key_regions,
        bucket_regions=bucket_regions,
        trust_policies={
            str(r.inputs.get("name", r.name)): Policy.parse(
                f"trust policy of role {r.inputs.get('name', r.name)}",
                r.urn,
                r.inputs.get("assumeRolePolicy") or {},
            )
            for r in plan.by_type("aws:iam/role:Role")
        },
    )
