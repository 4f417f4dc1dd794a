"""Waivers: accepted violations, each with a policy id, a resource URN or glob, a stack, a reason, an owner
and an expiry date. A broken waiver is an error that names the file, the entry and the field to fix.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

FIELDS = ("policy", "resource", "stack", "reason", "owner", "expires")
_FIX = {
    "policy": "set it to a policy id from docs/policies.md, e.g. MLS-S3-005",
    "resource": "set it to the violating resource's URN, or a glob such as 'urn:pulumi:dev::mlstack::*::dev-storage-*'",
    "stack": "set it to the stack name (dev, staging, prod) or '*'",
    "reason": "say why the violation is acceptable, in a sentence a reviewer can check",
    "owner": "name the team or person who answers for the waiver",
    "expires": "set an ISO date (YYYY-MM-DD) at most a few months ahead, and review the waiver before then",
}


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

    def render(self, source: str) -> str:
        where = f"entry {self.index}" if self.index is not None else "file"
        fix = _FIX.get(self.field, "make the file a mapping with a 'waivers' list")
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
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
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
                    policy=str(entry["policy"]),
                    resource=str(entry["resource"]),
                    stack=str(entry["stack"]),
                    reason=str(entry["reason"]).strip(),
                    owner=str(entry["owner"]).strip(),
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
        WaiverProblem(index, key, f"unknown field; the fields are {', '.join(FIELDS)}")
        for key in entry
        if key not in FIELDS
    ]
    for name in FIELDS:
        value = entry.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            problems.append(WaiverProblem(index, name, "missing or empty"))
    policy = entry.get("policy")
    if policy and str(policy) not in known_policies:
        problems.append(WaiverProblem(index, "policy", f"'{policy}' is not a policy of the pack"))
    expires = entry.get("expires")
    if expires is not None:
        date = _as_date(expires)
        if date is None:
            problems.append(WaiverProblem(index, "expires", f"'{expires}' is not a date"))
        elif date < today:
            problems.append(WaiverProblem(index, "expires", f"the waiver expired on {date.isoformat()}"))
    return problems
