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


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_argo_images_come_through_the_quay_and_k8s_caches(stack):
    registry, images = _images(stack, "argo-workflows")
    assert set(images) == {
        f"{registry}k8s/kubectl:v1.36.2",
        f"{registry}quay/argoproj/argocli:v4.0.6",
        f"{registry}quay/argoproj/workflow-controller:v4.0.6",
    }
    # The executor runs in every workflow pod; the controller names it in an argument.
    controller = next(
        container
        for item, spec in workloads(world_of(stack))
        if item.release == "argo-workflows"
        for container in containers(spec)
        if "workflow-controller" in container["image"]
    )
    executor = controller["args"][controller["args"].index("--executor-image") + 1]
    assert executor == f"{registry}quay/argoproj/argoexec:v4.0.6"


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_load_balancer_controller_image_comes_through_the_ecr_public_cache(stack):
    registry, images = _images(stack, "aws-load-balancer-controller")
    if not images:
        pytest.skip(f"{stack} has no load balancer controller")
    assert set(images) == {f"{registry}ecr-public/eks/aws-load-balancer-controller:v2.13.0"}
