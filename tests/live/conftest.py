"""Fixtures for the live-tooling tests: fake credentials, moto, and a guard that no socket is ever opened."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from mlstack.live import cli_support
from mlstack.live.aws import Aws
from tests.live.plan_account import serve_cache_rules

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account

_CREDENTIAL_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No test here may reach a network: fail any socket connection, and keep the user's AWS config out."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a live-tooling test tried to open a network connection: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for name in _CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)


@pytest.fixture
def moto(credentials: None) -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def aws(moto: None) -> Aws:
    """Clients for the mocked account in us-east-1."""
    return Aws(boto3.session.Session(), REGION)


@pytest.fixture
def cli_aws(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Make the commands connect to the mocked account; put Stubber-wrapped clients into the returned dict."""
    overrides: dict[str, object] = {}

    def connect(region: str | None, profile: str | None) -> Aws:
        session = boto3.session.Session()
        serve_cache_rules(session, {})  # moto lacks ecr:DescribePullThroughCacheRules
        return Aws(session, region or REGION, overrides)

    monkeypatch.setattr(cli_support, "connect", connect)
    return overrides
