"""The platform's deliberate exceptions to its own guardrails, defined once.

The offline policy pack (``policies/``) and the live audit (``mlstack/live/audit.py``) both import this module,
so a resource the stack creates on purpose outside a guardrail is accepted by both, and by nothing else:

- **Access-log buckets use SSE-S3.** S3 server access logging delivers only to a bucket whose default
  encryption is SSE-S3 (AES256), so a bucket that receives server access logs may use AES256 instead of
  SSE-KMS (components/storage.py, the access-logs bucket and its replica-region twin).
- **Pull-through cache repositories are mutable and follow the registry's scanning.** ECR creates them on the
  first pull from the creation template of their prefix, which sets tags MUTABLE on purpose (a cache follows
  its upstream, where tags move) and has no scan-on-push setting (components/registry.py). They are scanned
  only when the registry's scanning rules cover them.
"""

from __future__ import annotations

from collections.abc import Iterable

SSE_S3 = "AES256"
"""The SSEAlgorithm value of SSE-S3 (S3 API, ServerSideEncryption enum)."""

IMMUTABLE = "IMMUTABLE"
"""The one tag-mutability setting that refuses every tag overwrite.

ECR's ImageTagMutability enum also has IMMUTABLE_WITH_EXCLUSION, whose exclusion filters leave matching tags
mutable (ECR API, Repository.imageTagMutabilityExclusionFilters); the stack never sets it.
"""


def sse_s3_allowed(algorithm: str | None, receives_access_logs: bool) -> bool:
    """Whether a bucket's default encryption ``algorithm`` is the access-log exception: SSE-S3 on a bucket that
    is the target of S3 server access logging."""
    return receives_access_logs and algorithm == SSE_S3


def tags_immutable(mutability: str | None) -> bool:
    """Whether an ECR repository's ``imageTagMutability`` refuses every tag overwrite (plain IMMUTABLE only)."""
    return mutability == IMMUTABLE


def pull_through_cache_repository(repository: str, cache_prefixes: Iterable[str]) -> str | None:
    """The pull-through cache prefix ``repository`` belongs to, or None.

    ECR names a cache's repositories ``<ecrRepositoryPrefix>/<upstream repository>`` (ECR API,
    CreatePullThroughCacheRule.ecrRepositoryPrefix).
    """
    for prefix in cache_prefixes:
        if repository.startswith(f"{prefix.rstrip('/')}/"):
            return prefix
    return None
