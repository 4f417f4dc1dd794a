"""Generated reference pages stay in step with the code that they describe."""

from __future__ import annotations

import pytest

from mlstack.docgen import generated_pages
from tests.plans import ROOT


@pytest.mark.parametrize("page", sorted(generated_pages()))
def test_generated_page_is_current(page: str) -> None:
    assert (ROOT / page).read_text() == generated_pages()[page], f"{page} is stale: run `make docs`"


def test_every_spec_field_and_command_is_documented() -> None:
    pages = generated_pages()
    stack_file = pages["docs/reference/stack-file.md"]
    for row in (line for line in stack_file.splitlines() if line.startswith("| `")):
        description = row.rsplit("|", 2)[-2].strip()
        assert description, f"undocumented field: {row}"
    cli = pages["docs/reference/cli.md"]
    for section in cli.split("## `mlstack ")[1:]:
        assert section.split("\n\n", 2)[1].strip(), f"command without help: {section.splitlines()[0]}"


def test_every_policy_domain_has_a_section_in_the_policy_page() -> None:
    # A domain without a title renders its rules' index links with no section to land on (mkdocs INFO, not an error).
    from policies.catalog import DOMAINS
    from policies.docs import _DOMAIN_TITLES

    assert set(_DOMAIN_TITLES) == set(DOMAINS)
