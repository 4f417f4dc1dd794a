"""Shared building blocks of the environment spec: the strict base model, tiers and constrained types."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class StrictModel(BaseModel):
    """Base of every spec model: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=True, use_enum_values=False)


class Tier(StrEnum):
    """How hardened an environment is. Staging and prod protect stateful data and require multi-AZ."""

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"

    @property
    def hardened(self) -> bool:
        return self is not Tier.DEV


DnsLabel = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"),
    Field(
        description="Lower-case DNS label: letters, digits and '-', starting with a letter, at most 32 characters."
    ),
]
AccountId = Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
AwsRegion = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")]
IamPrincipalArn = Annotated[
    str,
    StringConstraints(
        pattern=r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:(root|role/[\w+=,.@/-]+|user/[\w+=,.@/-]+)$"
    ),
]


class RuleViolations(ValueError):
    """Several cross-field problems found at once, each with the dotted path of the field to fix.

    Raised by model validators so that the loader can report every problem under its own path instead of one
    joined message at the model's root.
    """

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))
