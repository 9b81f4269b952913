"""The search pass: one index of titles, headings, prose, defined names and identifiers, loaded by a
script tag so that search works from file://."""
from __future__ import annotations

import json

import pytest

from conftest_site import NOTATION, built_fixture_site


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> list[dict]:
    site = built_fixture_site(tmp_path_factory, NOTATION)
    text = (site / "search_index.js").read_text(encoding="utf-8")
    assert text.splitlines()[2].startswith("window.SEARCH_INDEX = ")
    return json.loads(text.split("=", 1)[1].strip().rstrip(";"))


def test_definitions_are_found_by_name_with_their_identifiers(index):
    forward = [e for e in index if e["h"] == "Attention.forward"]
    assert [e["u"] for e in forward] == ["paper/attention.html#Attention.forward"] and forward[0]["k"] == "method"
    assert {"scores"} <= set(forward[0]["i"].split())
    assert "Scores of queries against keys" in forward[0]["x"]


def test_pages_headings_and_prose_are_indexed(index):
    assert {"u": "paper/attention.html", "t": "Fixture attention", "h": "", "k": "page",
            "x": "Attention with $\\mathbf{A}^{rel}_{i,j}$ in its summary.", "i": ""} in index
    assert any(e["u"] == "paper/attention.html#shapes" and e["h"] == "Shapes" and e["k"] == "heading" for e in index)
    assert any(e["k"] == "prose" and "Everything is" in e["x"] for e in index)


def test_tests_are_found_by_name_and_sentence(index):
    found = [e for e in index if e["u"] == "tests/test_paper.html#TestAttentionScores.test_are_causal"]
    assert found == [{"u": "tests/test_paper.html#TestAttentionScores.test_are_causal", "t": "test_paper.py",
                      "h": "TestAttentionScores.test_are_causal", "x": "attention scores: are causal",
                      "i": "test_are_causal", "k": "method"}]


def test_the_index_cannot_close_its_script_tag(tmp_path_factory):
    site = built_fixture_site(tmp_path_factory, {"labml_nn/paper/odd.py": 'r"""\n# Odd\n\nA </script> tag.\n"""\n'})
    text = (site / "search_index.js").read_text(encoding="utf-8")
    assert "</script>" not in text and "A <\\/script> tag." in text
