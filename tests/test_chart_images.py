"""Chart images come through the environment's ECR pull-through caches: every container of a release's
rendered objects (real helm over shared/charts at the pinned version) names the environment's registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.gpu import KARPENTER_IMAGE, KARPENTER_IMAGE_DIGEST, KARPENTER_IMAGE_TAG
from mlstack.simulate.helm import charts_directory
from mlstack.simulate.objects import containers, workloads
from tests.simulation import world_of


def _images(stack: str, release: str) -> tuple[str, list[str]]:
    world = world_of(stack)
    registry = f"{world.spec.account_id}.dkr.ecr.{world.spec.region}.amazonaws.com/"
    images = [
        container["image"]
        for item, spec in workloads(world)
        if item.release == release
        for container in containers(spec)
    ]
    return registry, images


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_kueue_images_come_through_the_k8s_cache(stack):
    registry, images = _images(stack, "kueue")
    assert images
    assert all(image.startswith(f"{registry}k8s/kueue/kueue:v0.19.2") for image in images), images


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_karpenter_image_comes_through_the_ecr_public_cache_with_the_released_digest(stack):
    registry, images = _images(stack, "karpenter")
    assert images == [
        f"{registry}ecr-public/karpenter/controller:{KARPENTER_IMAGE_TAG}@{KARPENTER_IMAGE_DIGEST}"
    ]


def test_karpenter_tag_and_digest_are_the_released_charts():
    charts = charts_directory(Path(__file__).parent)
    if charts is None:
        pytest.skip("no shared/charts")
    released = yaml.safe_load((charts / "release-values" / "karpenter-1.14.1.yaml").read_text())
    image = released["controller"]["image"]
    assert (image["repository"], image["tag"], image["digest"]) == (
        KARPENTER_IMAGE,
        KARPENTER_IMAGE_TAG,
        KARPENTER_IMAGE_DIGEST,
    )
