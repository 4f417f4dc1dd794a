"""Waivers: accepted violations, each with a policy id, a resource URN or glob, a stack, a reason, an owner
and an expiry date. A broken waiver is an error that names the file, the entry and the field to fix.

An expired waiver is not broken: it is no longer honoured, so the violation it covered is reported again, and
only in the stacks it names (cdk-nag and Checkov behave the same way). One team's lapsed waiver therefore never
blocks another stack's check or ``pulumi up``. :func:`waiver_notices` warns ahead of the date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from mlstack.yaml_loading import safe_load_unique

FIELDS = ("policy", "resource", "stack", "reason", "owner", "expires")
_TEXT_FIELDS = ("policy", "resource", "stack", "reason", "owner")
# A waiver is a debt with a date: it must be looked at again within this many days of being written.
MAX_WAIVER_DAYS = 180
# How far ahead `mlstack check` warns that a waiver of a checked stack expires: two weeks leave a sprint to
# renew it (with a reviewed reason) or fix the finding before the check starts failing.
EXPIRY_WARNING_DAYS = 14
_FIX = {
    "policy": "set it to a policy id from docs/policies.md, e.g. MLS-S3-005",
    "resource": "set it to the violating resource's URN, or a glob such as 'urn:pulumi:dev::mlstack::*::dev-storage-*'",
    "stack": "set it to the stack name (dev, staging, prod) or '*'",
    "reason": "say why the violation is acceptable, in a sentence a reviewer can check",
    "owner": "name the team or person who answers for the waiver",
    "expires": (
        f"set an ISO date (YYYY-MM-DD) at most {MAX_WAIVER_DAYS} days ahead, and review the waiver before then"
    ),
}
_FILE_FIX = "make the file a mapping with a 'waivers' list"


@dataclass(frozen=True)
class Waiver:
    """One accepted violation."""

    index: int
    policy: str
    resource: str
    stack: str
    reason: str
    owner: str
    expires: dt.date

    def in_scope(self, stacks: Collection[str]) -> bool:
        """Whether the waiver names one of ``stacks`` (its stack field is a glob)."""
        return any(fnmatchcase(stack, self.stack) for stack in stacks)

    def honoured_on(self, today: dt.date) -> bool:
        """A waiver holds through its expiry date and lapses the day after."""
        return self.expires >= today

    def covers(self, policy_id: str, urn: str | None, stack: str) -> bool:
        return (
            self.policy == policy_id
            and fnmatchcase(stack, self.stack)
            and fnmatchcase(urn or "", self.resource)
        )


@dataclass(frozen=True)
class WaiverProblem:
    index: int | None
    field: str
    message: str
    fix: str | None = None  # when the field's usual fix does not apply

    def render(self, source: str) -> str:
        where = f"entry {self.index}" if self.index is not None else "file"
        fix = self.fix or _FIX.get(self.field, _FILE_FIX)
        return f"{source}: {where}, field '{self.field}': {self.message}\n      fix: {fix}"


class WaiverError(Exception):
    """The waiver file is unusable; lists every problem at once."""

    def __init__(self, source: str, problems: Sequence[WaiverProblem]):
        self.source = source
        self.problems = list(problems)
        count = len(self.problems)
        lines = [f"{source}: {count} problem{'s' if count != 1 else ''} in the waivers"]
        lines += [f"  - {p.render(source)}" for p in self.problems]
        super().__init__("\n".join(lines))


def load_waivers(
    path: Path, known_policies: Collection[str], today: dt.date, source: str | None = None
) -> list[Waiver]:
    """Read and check the waiver file. A missing file means no waivers."""
    source = source or str(path)
    if not path.is_file():
        return []
    try:
        document = safe_load_unique(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise WaiverError(
            source, [WaiverProblem(None, "waivers", f"cannot read the file ({exc}); save it as UTF-8 text")]
        ) from None
    except yaml.YAMLError as exc:
        raise WaiverError(source, [WaiverProblem(None, "waivers", f"not valid YAML: {exc}")]) from None
    return parse_waivers(document, known_policies, today, source)


def parse_waivers(
    document: Any, known_policies: Collection[str], today: dt.date, source: str
) -> list[Waiver]:
    """Check a parsed waiver document; entry indexes count from 0 as in the YAML list."""
    if document is None:
        return []
    entries = document.get("waivers") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise WaiverError(
            source, [WaiverProblem(None, "waivers", "expected a mapping with a 'waivers' list")]
        )
    problems: list[WaiverProblem] = []
    waivers: list[Waiver] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(WaiverProblem(index, "policy", "the entry is not a mapping"))
            continue
        entry_problems = _check_entry(index, entry, known_policies, today)
        problems += entry_problems
        if not entry_problems:
            waivers.append(
                Waiver(
                    index=index,
                    policy=entry["policy"],
                    resource=entry["resource"],
                    stack=entry["stack"],
                    reason=entry["reason"].strip(),
                    owner=entry["owner"].strip(),
                    expires=_as_date(entry["expires"]) or today,
                )
            )
    if problems:
        raise WaiverError(source, problems)
    return waivers


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def _check_entry(
    index: int, entry: dict[str, Any], known_policies: Collection[str], today: dt.date
) -> list[WaiverProblem]:
    problems = [
        WaiverProblem(
            index,
            str(key),
            "unknown field",
            fix=f"remove it, or rename it to one of the fields: {', '.join(FIELDS)}",
        )
        for key in entry
        if key not in FIELDS
    ]
    for name in FIELDS:
        value = entry.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            problems.append(WaiverProblem(index, name, "missing or empty"))
        elif name in _TEXT_FIELDS and not isinstance(value, str):
            # YAML turns `owner: 2003` or `reason: yes` into a number or a boolean: a typo, not a name.
            problems.append(
                WaiverProblem(index, name, f"expected text, got {type(value).__name__} {value!r}; quote it")
            )
    policy = entry.get("policy")
    if isinstance(policy, str) and policy.strip() and policy not in known_policies:
        problems.append(WaiverProblem(index, "policy", f"'{policy}' is not a policy of the pack"))
    expires = entry.get("expires")
    if expires is not None:
        date = _as_date(expires)
        if date is None:
            problems.append(WaiverProblem(index, "expires", f"'{expires}' is not a date"))
        elif date > today + dt.timedelta(days=MAX_WAIVER_DAYS):
            latest = (today + dt.timedelta(days=MAX_WAIVER_DAYS)).isoformat()
            problems.append(
                WaiverProblem(
                    index,
                    "expires",
                    f"{date.isoformat()} is more than {MAX_WAIVER_DAYS} days ahead (latest: {latest})",
                )
            )
    return problems


def waiver_notices(waivers: Sequence[Waiver], stacks: Collection[str], today: dt.date) -> list[str]:
    """One warning line per waiver of ``stacks`` that has expired or expires within EXPIRY_WARNING_DAYS.

    Waivers of other stacks are left out: they are their owners' business and change nothing here.
    """
    notices = []
    for waiver in waivers:
        if not waiver.in_scope(stacks):
            continue
        where = f"waiver entry {waiver.index} ({waiver.policy}, stack {waiver.stack}, owner {waiver.owner})"
        if not waiver.honoured_on(today):
            notices.append(
                f"{where} expired on {waiver.expires.isoformat()} and is no longer honoured: its violations "
                "are reported again; fix them, or renew the waiver with a reviewed reason"
            )
        elif waiver.expires <= today + dt.timedelta(days=EXPIRY_WARNING_DAYS):
            days = (waiver.expires - today).days
            notices.append(
                f"{where} expires on {waiver.expires.isoformat()} "
                f"({'today' if days == 0 else f'in {days} day' + ('s' if days != 1 else '')}); fix the "
                "violation or renew the waiver before then"
            )
    return notices
