"""Config-validation tier for inference endpoints: each bad declaration gets one clear message at its field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlstack.spec.inference import EndpointSpec, image_registry
from mlstack.spec.loader import SPEC_KEY, SpecError, load_spec
from tests.plans import PROJECT

DEV = yaml.safe_load(PROJECT.stack_file("dev").read_text())
# Cases below make the endpoint warm; a warm endpoint needs a Prometheus (inference.prometheus_url).
DEV["config"][SPEC_KEY]["inference"]["prometheus_url"] = "http://prometheus-operated.monitoring.svc:9090"
ECR = "111122223333.dkr.ecr.us-east-1.amazonaws.com"
CERT_ID = "5a1f7c2e-8b3d-4e6a-9f10-2c4b6d8e0a13"


def _load_with(tmp_path: Path, **changes: Any) -> None:
    document = copy.deepcopy(DEV)
    endpoint = document["config"][SPEC_KEY]["inference"]["endpoints"][0]
    for key, value in changes.items():
        if value is None:
            endpoint.pop(key, None)
        else:
            endpoint[key] = value
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    load_spec(path)


BAD_ENDPOINTS: dict[str, tuple[dict[str, Any], str, str]] = {
    "unknown pool": ({"gpu_pool": "nope"}, "inference.endpoints.0.gpu_pool", "not a declared pool"),
    "unknown team": ({"team": "ghosts"}, "inference.endpoints.0.team", "not a declared team"),
    "too many gpus for the pool": (
        {"gpus_per_replica": 8, "min_replicas": 1},
        "inference.endpoints.0.gpus_per_replica",
        "exceed pool 'gpu-dev' max_gpus",
    ),
    "min above max": (
        {"min_replicas": 3, "max_replicas": 2},
        "inference.endpoints.0",
        "greater than max_replicas",
    ),
    "model in another bucket": (
        {"model": "s3://somebody-else/search/chat/v1/"},
        "inference.endpoints.0.model",
        "outside the models bucket",
    ),
    "model of another team": (
        {"model": "s3://dev-111122223333-us-east-1-models/recsys/chat/v1/"},
        "inference.endpoints.0.model",
        "belongs to 'search'",
    ),
    "model not following the layout": (
        {"model": "s3://dev-111122223333-us-east-1-models/chat.safetensors"},
        "inference.endpoints.0.model",
        "<team>/<model>/<version>/",
    ),
    "image from docker hub": (
        {"image": "vllm/vllm-openai:v0.11.0"},
        "inference.endpoints.0.image",
        "public registry (docker.io)",
    ),
    "image from ghcr": (
        {"image": "ghcr.io/acme/vllm:v1"},
        "inference.endpoints.0.image",
        "public registry (ghcr.io)",
    ),
    "image from another account's ecr": (
        {"image": "999988887777.dkr.ecr.us-east-1.amazonaws.com/dev/serving:v1"},
        "inference.endpoints.0.image",
        "another ECR registry",
    ),
    "image from an undeclared repository": (
        {"image": f"{ECR}/random/serving:v1"},
        "inference.endpoints.0.image",
        "neither one of the environment's repositories",
    ),
    "image without a tag": (
        {"image": f"{ECR}/dev/serving"},
        "inference.endpoints.0.image",
        "no tag or digest",
    ),
    "image on latest": ({"image": f"{ECR}/dev/serving:latest"}, "inference.endpoints.0.image", "'latest'"),
    "kubernetes without a pool": ({"gpu_pool": None}, "inference.endpoints.0", "needs gpu_pool"),
    "alb in front of scale to zero": (
        {"exposure": "internal-alb"},
        "inference.endpoints.0",
        "cannot hold requests",
    ),
    "sagemaker without instance type": (
        {"backend": "sagemaker", "gpu_pool": None, "min_replicas": 1},
        "inference.endpoints.0",
        "needs sagemaker_instance_type",
    ),
    "sagemaker scaled to zero": (
        {"backend": "sagemaker", "gpu_pool": None, "sagemaker_instance_type": "ml.g6.xlarge"},
        "inference.endpoints.0",
        "cannot scale to zero",
    ),
    "sagemaker with a pool": (
        {"backend": "sagemaker", "min_replicas": 1, "sagemaker_instance_type": "ml.g6.xlarge"},
        "inference.endpoints.0",
        "gpu_pool is for the kubernetes backend",
    ),
    "sagemaker instance without enough gpus": (
        {
            "backend": "sagemaker",
            "gpu_pool": None,
            "min_replicas": 1,
            "sagemaker_instance_type": "ml.g6.2xlarge",
            "gpus_per_replica": 4,
        },
        "inference.endpoints.0.gpus_per_replica",
        "ml.g6.2xlarge has 1",
    ),
    "sagemaker unknown instance type": (
        {
            "backend": "sagemaker",
            "gpu_pool": None,
            "min_replicas": 1,
            "sagemaker_instance_type": "ml.m5.large",
        },
        "inference.endpoints.0.sagemaker_instance_type",
        "not a GPU instance type",
    ),
    "certificate on a cluster-only endpoint": (
        {
            "exposure": "internal",
            "certificate_arn": f"arn:aws:acm:us-east-1:111122223333:certificate/{CERT_ID}",
        },
        "inference.endpoints.0",
        "certificate_arn is for exposure internal-alb",
    ),
    "certificate of another region": (
        {
            "exposure": "internal-alb",
            "min_replicas": 1,
            "certificate_arn": f"arn:aws:acm:eu-west-1:111122223333:certificate/{CERT_ID}",
        },
        "inference.endpoints.0.certificate_arn",
        "region eu-west-1",
    ),
    "certificate that is not an ACM ARN": (
        {"exposure": "internal-alb", "min_replicas": 1, "certificate_arn": "my-cert"},
        "inference.endpoints.0.certificate_arn",
        "pattern",
    ),
    "unknown autoscaling signal": (
        {"autoscaling": {"signal": "gpu", "target": 1}},
        "inference.endpoints.0.autoscaling.signal",
        "concurrency",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ENDPOINTS), ids=sorted(BAD_ENDPOINTS))
def test_bad_endpoint_is_rejected_at_its_field(tmp_path: Path, case: str) -> None:
    changes, field_path, fragment = BAD_ENDPOINTS[case]
    with pytest.raises(SpecError) as caught:
        _load_with(tmp_path, **changes)
    message = str(caught.value)
    assert field_path in message, message
    assert fragment in message, message
    assert "Traceback" not in message


def test_more_gpus_than_the_largest_instance_of_the_pool(tmp_path: Path) -> None:
    document = copy.deepcopy(DEV)
    spec = document["config"][SPEC_KEY]
    spec["gpu_pools"][0].update(instance_types=["g6.xlarge", "g6.2xlarge"], max_gpus=16)
    spec["inference"]["endpoints"][0].update(gpus_per_replica=2)
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert "inference.endpoints.0.gpus_per_replica" in str(caught.value)
    assert "largest instance in pool 'gpu-dev' (g6.xlarge, g6.2xlarge) has 1" in str(caught.value)


def test_a_pool_family_allows_its_largest_member(tmp_path: Path) -> None:
    document = copy.deepcopy(DEV)
    spec = document["config"][SPEC_KEY]
    spec["gpu_pools"][0].update(max_gpus=16)
    spec["inference"]["endpoints"][0].update(gpus_per_replica=8)  # g6.48xlarge and g5.48xlarge have 8
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    _, loaded = load_spec(path)
    assert loaded.inference.endpoints[0].gpus_per_replica == 8


def test_pull_through_cache_images_are_allowed(tmp_path: Path) -> None:
    document = copy.deepcopy(DEV)
    spec = document["config"][SPEC_KEY]
    spec["inference"]["endpoints"][0]["image"] = f"{ECR}/ecr-public/vllm/vllm-openai:v0.11.0"
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    load_spec(path)


def test_model_uri_gets_its_trailing_slash_and_parses() -> None:
    endpoint = EndpointSpec.model_validate(
        {
            "name": "chat",
            "team": "search",
            "model": "s3://dev-111122223333-us-east-1-models/search/llama/v1",
            "runtime": "vllm",
            "image": f"{ECR}/dev/serving:v1",
            "gpu_pool": "gpu-dev",
        }
    )
    assert endpoint.model == "s3://dev-111122223333-us-east-1-models/search/llama/v1/"
    assert endpoint.model_location.prefix == "search/llama/v1/"
    assert endpoint.image_repository == "dev/serving"


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("vllm/vllm-openai:v1", "docker.io"),
        ("nginx:1.27", "docker.io"),
        ("ghcr.io/a/b:1", "ghcr.io"),
        ("localhost:5000/a:1", "localhost:5000"),
        (f"{ECR}/dev/serving:v1", ECR),
    ],
)
def test_image_registry_follows_docker_resolution(image: str, registry: str) -> None:
    assert image_registry(image) == registry


def test_hardened_tiers_refuse_an_internal_alb_without_https(tmp_path: Path) -> None:
    document = yaml.safe_load(PROJECT.stack_file("prod").read_text())
    endpoints = document["config"][SPEC_KEY]["inference"]["endpoints"]
    index = next(i for i, e in enumerate(endpoints) if e.get("exposure") == "internal-alb")
    del endpoints[index]["certificate_arn"]
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert f"inference.endpoints.{index}.certificate_arn" in str(caught.value)
    assert "over HTTPS only" in str(caught.value)
