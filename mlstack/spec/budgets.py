"""Budgets section of the environment spec: the monthly AWS Budget and who hears about it."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from mlstack.spec.base import DnsLabel, StrictModel

Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")]
SnsTopicArn = Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]+$")]


class BudgetSpec(StrictModel):
    """The environment's monthly cost budget. Required: every environment has one."""

    monthly_limit_usd: float = Field(gt=0, description="Monthly cost limit of the environment in USD.")
    thresholds_percent: list[float] = Field(
        default_factory=lambda: [50.0, 80.0, 100.0],
        min_length=1,
        max_length=4,
        description="Actual-spend thresholds, in percent of the limit, that notify. A forecasted-100% alert is "
        "always added (AWS allows five notifications per budget, so at most four thresholds). "
        "Default: 50, 80, 100.",
    )
    notify_emails: list[Email] = Field(
        default_factory=list,
        max_length=10,
        description="Emails notified (AWS allows ten per notification). Default: none.",
    )
    sns_topic_arn: SnsTopicArn | None = Field(default=None, description="SNS topic notified. Default: none.")
    team_limits_usd: dict[DnsLabel, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict,
        description="Monthly limit in USD per team, keyed by team name: each becomes its own budget filtered on "
        "the team's cost center (tag team-cost-center), with the same thresholds and recipients. Default: no team budgets; team "
        "spend counts only toward the environment budget.",
    )

    @field_validator("thresholds_percent")
    @classmethod
    def _in_range(cls, value: list[float]) -> list[float]:
        bad = [v for v in value if not 0 < v <= 1000]
        if bad:
            raise ValueError(f"thresholds must be in (0, 1000] percent, got {bad}")
        return sorted(set(value))

    @model_validator(mode="after")
    def _someone_is_told(self) -> BudgetSpec:
        if not self.notify_emails and self.sns_topic_arn is None:
            raise ValueError("a budget nobody hears about is useless: set notify_emails or sns_topic_arn")
        return self
