"""Where each custom kind's CustomResourceDefinition comes from: the plan (a Release or our own CRD resource)
or the upstream copies in ``shared/crds`` (reference only: nothing in the plan installs those).

Schema validation (:mod:`mlstack.simulate.schema`) takes a custom object's schema from here, and install
ordering (:mod:`mlstack.simulate.ordering`) asks which resource of the plan installs a kind's CRD.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlstack.simulate.framework import World, derived
from mlstack.simulate.helm import KubeObject
from mlstack.simulate.objects import our_objects, renders, shared_crds

CRD_KIND = "CustomResourceDefinition"


@dataclass(frozen=True)
class CrdSource:
    """One CRD and who installs it.

    ``urn`` is the plan resource that installs it (a Release, or our CRD resource), empty for a reference copy
    from ``shared/crds``; ``release`` and ``template`` name the chart file for a CRD a release renders.
    """

    crd: dict[str, Any]
    urn: str = ""
    release: str = ""
    template: str = ""

    @property
    def group(self) -> str:
        return str((self.crd.get("spec") or {}).get("group", ""))

    @property
    def kind(self) -> str:
        return str(((self.crd.get("spec") or {}).get("names") or {}).get("kind", ""))

    @property
    def plural(self) -> str:
        return str(((self.crd.get("spec") or {}).get("names") or {}).get("plural", ""))

    @property
    def scope(self) -> str:
        return str((self.crd.get("spec") or {}).get("scope", "Namespaced"))

    @property
    def in_plan(self) -> bool:
        return bool(self.urn)

    @property
    def pre_installed_by_helm(self) -> bool:
        """A chart's ``crds/`` file: Helm creates it before it builds the release's other objects
        (helm/helm@v3.20.2:pkg/action/install.go:259-267, ``installCRDs``); a CRD under ``templates/`` is an
        ordinary object of the release."""
        parts = self.template.split("/")
        return "crds" in parts[:-1] and "templates" not in parts

    def served_versions(self) -> dict[str, dict[str, Any]]:
        """Served version name -> its version entry."""
        return {
            str(v.get("name")): v
            for v in (self.crd.get("spec") or {}).get("versions") or []
            if isinstance(v, dict) and v.get("served")
        }

    def describe(self) -> str:
        if self.release:
            return f"chart template {self.template} of release {self.release}"
        if self.urn:
            return f"CustomResourceDefinition {self.urn.rsplit('::', 1)[-1]}"
        return f"shared/crds ({self.group}/{self.kind}, reference copy, not installed by the plan)"


def group_of(api_version: str) -> str:
    """``karpenter.sh/v1`` -> ``karpenter.sh``; the core group (``v1``) is empty."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def version_of(api_version: str) -> str:
    return api_version.rsplit("/", 1)[-1]


@derived
def crd_sources(world: World) -> dict[tuple[str, str], list[CrdSource]]:
    """(group, kind) -> every CRD for it: the plan's (charts' and ours, in plan order), then shared/crds."""
    index: dict[tuple[str, str], list[CrdSource]] = {}

    def add(source: CrdSource) -> None:
        index.setdefault((source.group, source.kind), []).append(source)

    for item in our_objects(world):
        if item.kind == CRD_KIND:
            add(CrdSource(item.obj, urn=item.urn))
    for result in renders(world):
        # A Release with skipCrds leaves its charts' crds/ files out of the install (pulumi/pulumi-kubernetes
        # @9497796 provider/pkg/provider/helm_release.go:619, ``client.SkipCRDs``); templates still install.
        skip_folder = bool(result.release.inputs.get("skipCrds"))
        for rendered in result.objects:
            if rendered.kind == CRD_KIND:
                source = CrdSource(rendered.obj, rendered.urn, rendered.release, rendered.template)
                if not (skip_folder and source.pre_installed_by_helm):
                    add(source)
    for crd in shared_crds(world.project_root):
        add(CrdSource(crd))
    return index


def is_custom(world: World, item: KubeObject) -> bool:
    """Whether an object's kind is defined by a CRD (known to the plan or to shared/crds)."""
    return (group_of(item.api_version), item.kind) in crd_sources(world)


def candidates(world: World, item: KubeObject) -> Iterator[CrdSource]:
    """The CRDs that could define ``item``, best first: its own release's, then the plan's, then shared/crds.

    A release's own CRD wins for that release's objects (it is the version the chart was written against);
    otherwise what the plan installs is what the cluster will serve.
    """
    sources = crd_sources(world).get((group_of(item.api_version), item.kind), [])
    if item.release:
        yield from (s for s in sources if s.urn == item.urn and s.release == item.release)
    yield from (s for s in sources if s.in_plan and not (item.release and s.urn == item.urn))
    yield from (s for s in sources if not s.in_plan)
