"""Cases of MLS-KMS-005 (EBS storage classes encrypt with a platform KMS key), merged into tests/test_policies.py."""

from __future__ import annotations

from typing import Any

from tests.policy_cases import Case, bad, ok

STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"


def _without_key(resource: Any) -> None:
    del resource.inputs["parameters"]["kmsKeyId"]
    resource.property_dependencies.pop("parameters", None)


def _foreign_key(resource: Any) -> None:
    resource.inputs["parameters"]["kmsKeyId"] = "arn:aws:kms:us-east-1:999999999999:key/0000-foreign"
    resource.property_dependencies.pop("parameters", None)


VOLUME_KEY_CASES: dict[str, list[Case]] = {
    "MLS-KMS-005": [
        ok("dev"),
        ok("prod"),
        bad("dev", "the account's default EBS key", STORAGE_CLASS, _without_key),
        bad("staging", "a key of another account", STORAGE_CLASS, _foreign_key),
    ],
}
