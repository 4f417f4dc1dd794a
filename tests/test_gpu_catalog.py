"""The GPU instance table: well-formed, consistent, and answering family and type questions."""

from __future__ import annotations

import pytest
import yaml

from mlstack.catalog import TABLE_PATH, gpu_catalog

REQUIRED_FAMILIES = {"g4dn", "g5", "g6", "g6e", "p4d", "p4de", "p5", "p5e", "p5en"}


def test_table_covers_the_families_pools_may_name() -> None:
    assert REQUIRED_FAMILIES <= set(gpu_catalog().families)


def test_every_type_is_consistent() -> None:
    for name, instance_type in gpu_catalog().types.items():
        assert name.split(".")[0] == instance_type.family, name
        assert instance_type.gpu_count >= 1 and instance_type.vcpus >= 4, name
        assert instance_type.efa == (instance_type.max_efa_interfaces > 0), name
        assert instance_type.memory_gib >= instance_type.vcpus, name


def test_gpu_memory_is_the_same_across_a_family() -> None:
    catalog = gpu_catalog()
    for family in catalog.families:
        assert len({(t.gpu_model, t.gpu_memory_gib) for t in catalog.family_types(family)}) == 1, family


def test_table_entries_have_no_unknown_keys() -> None:
    document = yaml.safe_load(TABLE_PATH.read_text())
    expected = {
        "family",
        "gpu_model",
        "gpu_count",
        "gpu_memory_gib",
        "vcpus",
        "memory_gib",
        "efa",
        "max_efa_interfaces",
    }
    for name, entry in document["instance_types"].items():
        assert set(entry) == expected, name


def test_lookup_and_expansion() -> None:
    catalog = gpu_catalog()
    assert catalog.is_gpu_type("p5.48xlarge") and not catalog.is_gpu_type("m5.large")
    assert not catalog.is_gpu_type("g5") and catalog.is_family("g5")
    assert catalog.lookup("p4de.24xlarge").gpu_memory_gib == 80
    assert [t.name for t in catalog.expand("g6e.12xlarge")] == ["g6e.12xlarge"]
    sizes = [t.vcpus for t in catalog.expand("g5")]
    assert sizes == sorted(sizes) and len(sizes) == 8
    with pytest.raises(KeyError, match="did you mean"):
        catalog.lookup("g5.xlarg")
