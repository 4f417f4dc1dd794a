"""How a pinned Helm chart is named to the Pulumi Kubernetes provider's ``helm.v3.Release``."""

from __future__ import annotations

import pulumi_kubernetes as kubernetes

OCI_SCHEME = "oci://"


def chart_source(repository: str, chart: str) -> tuple[str, kubernetes.helm.v3.RepositoryOptsArgs | None]:
    """``(chart, repository_opts)`` for a Release.

    A classic repository (``https://``) goes in ``repository_opts.repo`` with the bare chart name. An OCI
    registry must not: the provider keeps any URL given as ``repo`` as a classic repository and fetches its
    ``index.yaml``, which an OCI registry does not serve, so the install fails (and preview does not show it).
    The full ``oci://registry/path/chart`` reference goes in ``chart`` with no ``repository_opts`` instead.
    Source: pulumi/pulumi-kubernetes provider/pkg/provider/helm_release.go ``resolveChartName`` (an ``oci://``
    chart is used as is; a URL repo becomes ``RepoURL`` for ``repo.FindChartInAuthAndTLSAndPassRepoURL``);
    issues pulumi/pulumi-kubernetes#2158 and #2334.
    """
    if repository.startswith(OCI_SCHEME):
        return f"{repository.rstrip('/')}/{chart}", None
    return chart, kubernetes.helm.v3.RepositoryOptsArgs(repo=repository)
