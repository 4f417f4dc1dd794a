"""Chart images come through the environment's ECR pull-through caches: every container of a release's
rendered objects (real helm over shared/charts at the pinned version) names the environment's registry."""

from __future__ import annotations

import pytest

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
