"""Clients and error translation shared by the live commands.

Every client retries in adaptive mode, so throttling on large accounts slows a command down instead of failing
it. Every call goes through :func:`aws_call`, which turns botocore's exceptions into two kinds: a
:class:`LiveError` stops the whole command (no credentials, expired credentials, no network, a timeout), and a
:class:`Denied` names the one IAM permission that was refused so the caller can report that check as not
checked and carry on. Any other AWS error that reaches the command is turned into one ``error:`` line by
:func:`describe_unexpected` (exit code 2), never a traceback and never exit code 1 ("findings").
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
    WaiterError,
)

if TYPE_CHECKING:
    import boto3

# Adaptive mode adds client-side rate limiting on top of standard retries; ten attempts ride out the
# throttling that list-heavy audits meet on accounts with thousands of resources.
RETRIES: dict[str, Any] = {"mode": "adaptive", "max_attempts": 10}

DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "UnauthorizedOperation",
        "UnauthorizedException",
        "Forbidden",
        "403",
    }
)
EXPIRED_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidToken",
        "SignatureDoesNotMatch",
    }
)

NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_PROFILE (and run `aws sso login` for SSO profiles), or "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an instance or pod role is available"
)
EXPIRED = (
    "the AWS credentials are expired or invalid ({detail}); refresh them (`aws sso login`, or new keys) "
    "and run again"
)


class LiveError(Exception):
    """A problem that stops the whole command: no or expired credentials, no endpoint, a refused change.

    ``incomplete`` marks the ones a denied permission caused (exit code 3 instead of 2).
    """

    def __init__(self, message: str, *, incomplete: bool = False):
        self.incomplete = incomplete
        super().__init__(message)


class Denied(Exception):
    """One API call was refused; ``permission`` is the IAM action the caller needs, e.g. s3:GetBucketPolicy."""

    def __init__(self, permission: str, detail: str = ""):
        self.permission = permission
        self.detail = detail
        super().__init__(f"{permission} denied")


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError, e.g. NoSuchBucketPolicy."""
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def aws_call(permission: str) -> Iterator[None]:
    """Run AWS calls that need ``permission`` and translate their failures into LiveError or Denied.

    Other ClientErrors (NoSuchBucket, NoSuchBucketPolicy...) pass through: their meaning depends on the call.
    """
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise LiveError(NO_CREDENTIALS) from exc
    except (TokenRetrievalError, SSOError) as exc:
        raise LiveError(EXPIRED.format(detail=str(exc))) from exc
    except ProfileNotFound as exc:
        raise LiveError(f"{exc}; check AWS_PROFILE or --profile") from exc
    except CredentialRetrievalError as exc:  # e.g. a failing credential_process (botocore/credentials.py)
        raise LiveError(
            f"{exc}; fix the profile's credential source (credential_process, role) and run again"
        ) from exc
    except NoRegionError as exc:
        raise LiveError("no AWS region: pass --region or set AWS_REGION") from exc
    except (ConnectionError, HTTPClientError) as exc:
        # botocore/exceptions.py: EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError and SSLError
        # are ConnectionErrors; ReadTimeoutError and ConnectionClosedError are HTTPClientErrors.
        raise LiveError(
            f"cannot reach {_endpoint(exc)} ({type(exc).__name__}: {exc}); check the network, "
            "proxy and firewall (a filtered network times out), then run again"
        ) from exc
    except ClientError as exc:
        code = error_code(exc)
        if code in EXPIRED_CODES:
            raise LiveError(EXPIRED.format(detail=code)) from exc
        if code in DENIED_CODES:
            raise Denied(permission, str(exc.response.get("Error", {}).get("Message", ""))) from exc
        raise


def _endpoint(exc: BotoCoreError) -> str:
    return str(exc.kwargs.get("endpoint_url", "the AWS endpoint"))


def describe_unexpected(exc: BaseException) -> str:
    """One line for an AWS error no check knows how to read: the operation, the code and what to do."""
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message", "")
        return (
            f"AWS {exc.operation_name} failed: {error_code(exc) or 'unknown error'}"
            + (f" ({message})" if message else "")
            + "; this is not a finding about the account: fix the cause, or retry if AWS reported a transient "
            "problem"
        )
    if isinstance(exc, WaiterError):
        return f"{exc}; retry, and check the resource in the console if it persists"
    return f"AWS SDK error: {exc}; fix the cause and run again"


def partition_of(session: boto3.session.Session, region: str) -> str:
    """The partition of ``region`` from botocore's endpoint data; ``aws`` for a region botocore does not know."""
    from botocore.exceptions import UnknownRegionError

    try:
        return str(session.get_partition_for_region(region))
    except UnknownRegionError:
        return "aws"


class Aws:
    """Clients for one account and region, created once per service with adaptive retries.

    ``overrides`` lets tests hand in a client wrapped in botocore's Stubber for a service moto lacks.
    """

    def __init__(
        self,
        session: boto3.session.Session,
        region: str,
        overrides: Mapping[str, Any] | None = None,
    ):
        self.session = session
        self.region = region
        self._overrides: dict[str, Any] = dict(overrides or {})
        self._clients: dict[tuple[str, str], Any] = {}

    @classmethod
    def connect(cls, region: str | None = None, profile: str | None = None) -> Aws:
        """Clients from the default credential chain (or a named profile) in ``region``."""
        # boto3 and botocore's client stack take a fifth of a second to import; only the live commands pay it.
        import boto3.session

        with aws_call("session"):
            session = boto3.session.Session(profile_name=profile, region_name=region)
        # botocore reads only AWS_DEFAULT_REGION and the profile (botocore/configprovider.py, 'region'); the AWS
        # CLI and the other SDKs also read AWS_REGION, which takes precedence (AWS SDKs and Tools reference guide,
        # "AWS Region"), so it is honoured here the same way.
        resolved = region or os.environ.get("AWS_REGION") or session.region_name
        if not resolved:
            raise LiveError("no AWS region: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION)")
        return cls(session, resolved)

    @property
    def partition(self) -> str:
        """The ARN partition of this region: aws, aws-us-gov, aws-cn... (from botocore's endpoint data)."""
        return partition_of(self.session, self.region)

    def client(self, service: str, region: str | None = None) -> Any:
        """The client of ``service`` in ``region`` (default: this region); created on first use."""
        if service in self._overrides:
            return self._overrides[service]
        key = (service, region or self.region)
        if key not in self._clients:
            from botocore.config import Config  # with boto3, loaded only by the live commands

            self._clients[key] = self.session.client(
                service,  # type: ignore[call-overload]
                region_name=key[1],
                config=Config(retries=RETRIES, user_agent_extra="mlstack"),
            )
        return self._clients[key]

    def account_id(self) -> str:
        """The account of the current credentials (sts:GetCallerIdentity needs no permission)."""
        with aws_call("sts:GetCallerIdentity"):
            return str(self.client("sts").get_caller_identity()["Account"])
