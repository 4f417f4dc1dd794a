"""The generated input tables of docs/components/*.md match the spec models."""

from __future__ import annotations

import pytest

from mlstack.reference import BEGIN, PAGES, render_page
from tests.plans import ROOT


@pytest.mark.parametrize("page", sorted(PAGES))
def test_generated_inputs_are_current(page: str) -> None:
    text = (ROOT / page).read_text()
    assert BEGIN in text
    assert text == render_page(text, PAGES[page]), "run `python -m mlstack.reference` to regenerate"
