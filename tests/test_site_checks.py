"""The "Checked by" section: each page lists the tests that declare it (`pytest.mark.checks`),
with the outcomes of the latest recorded run; the tests are pages of their own."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest_site import NOTATION, REPO, Node, fixture_repo, need_katex, read_page, write_results
from utils.build import build
from utils.checked_by import Declarations, sentence
from utils.errors import SiteError


def checked_by(page: Node) -> Node:
    return page.one("section", id="checked-by")


def entries(page: Node) -> list[tuple[str, str, str]]:
    """(status label or "", sentence, link) of each listed test."""
    found = []
    for li in checked_by(page).all("li"):
        status = li.all(cls="test-status")
        link = li.one("a", "test-link")
        found.append((status[0].text() if status else "", link.one(cls="test-sentence").text(), link.attrs["href"]))
    return found


def built(tmp_path: Path, results: Path | None | bool = False, git: str | None = None):
    need_katex()
    root = fixture_repo(tmp_path / "repo", NOTATION)
    commit = None
    if git:
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@t"}
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "fixture"]):
            subprocess.run(["git", "-C", str(root), *args], check=True, env=env, capture_output=True)
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    if callable(results):
        results = results(root, commit)
    out = tmp_path / "out"
    build(root, out, results=results)
    return out


def page(out: Path, name: str) -> Node:
    return read_page(out, name)


def test_names_read_as_sentences():
    assert sentence("test_memory_equals_full_context") == "memory equals full context"
    assert sentence("TestRelativeShift") == "relative shift"
    assert sentence("TestKVBuffer.test_grows_in_place") == "KV buffer: grows in place"
    assert sentence("test_xl_beats_the_baseline") == "xl beats the baseline"


def test_declarations_are_read_from_decorators_classes_and_pytestmark():
    d = Declarations()
    d.read("tests/test_paper.py", textwrap.dedent(NOTATION["tests/test_paper.py"]))
    found = d.by_page({"labml_nn/paper/notation.py", "labml_nn/paper/attention.py",
                       "labml_nn/paper/readme.md", "readme.md"})
    assert not d.problems
    assert [t.qualname for t in found["labml_nn/paper/notation.py"]] == [
        "test_scores_are_dot_products", "test_layer_maps_x_to_x_prime", "TestAttentionScores",
        "test_readme_links_resolve"]
    assert [t.qualname for t in found["labml_nn/paper/attention.py"]] == ["TestAttentionScores"]
    assert [t.qualname for t in found["readme.md"]] == ["test_readme_links_resolve"]


def test_pages_list_their_tests_without_status_when_there_are_no_results(tmp_path):
    out = built(tmp_path, results=False)
    html = page(out, "paper/notation.html")
    listed = entries(html)
    assert [(s, t) for s, t, _ in listed] == [
        ("", "scores are dot products"), ("", "layer maps x to x prime"), ("", "attention scores"),
        ("", "readme links resolve")]
    assert listed[0][2] == "../tests/test_paper.html#test_scores_are_dot_products"
    assert "No test results are recorded" in checked_by(html).text()
    assert [a.text() for a in html.one("details", "toc").all("a", href="#checked-by")] == ["Checked by"]
    assert "No test declares this page yet." in checked_by(page(out, "loose/thing.html")).text()
    assert [t for _, t, _ in entries(page(out, "index.html"))] == ["readme links resolve"]
    assert not checked_by(html).all(cls="test-status")


def test_tests_are_source_pages_with_an_anchor_per_test(tmp_path):
    out = built(tmp_path)  # the build's link check resolves every "checked by" link and anchor
    html = page(out, "tests/test_paper.html")
    source = textwrap.dedent(NOTATION["tests/test_paper.py"]).lstrip("\n")
    lines = html.one("div", "source").all("span", "line")
    assert [line.text().split("\n")[0] for line in lines] == source.splitlines()
    anchors = {a.attrs["id"]: a.ancestor("span", "line").attrs["id"] for a in html.all("span", "test-anchor")}
    def line_of(start: str) -> str:  # a test's anchor is at its first line, decorators included
        return "L" + str(next(n for n, text in enumerate(source.splitlines(), 1) if text.strip().startswith(start)))

    assert anchors == {"test_scores_are_dot_products": line_of("def test_scores_are_dot_products"),
                       "test_layer_maps_x_to_x_prime": line_of('@pytest.mark.parametrize("n"'),
                       "TestAttentionScores": line_of('@pytest.mark.checks("labml_nn/paper/attention.py")'),
                       "TestAttentionScores.test_match_the_paper": line_of("def test_match_the_paper"),
                       "TestAttentionScores.test_are_causal": line_of("def test_are_causal"),
                       "test_readme_links_resolve": line_of('@pytest.mark.checks("labml_nn/paper/readme.md"')}
    assert "Tests of the fixture" in page(out, "tests/index.html").one("nav", "listing").text()
    assert page(out, "index.html").all("a", href="tests/index.html")


def test_statuses_come_from_the_results_of_the_same_commit(tmp_path):
    out = built(tmp_path, results=lambda root, commit: write_results(tmp_path / "r.json", commit), git="yes")
    html = page(out, "paper/notation.html")
    assert [(s, t) for s, t, _ in entries(html)] == [
        ("passed", "scores are dot products"),
        ("failed: 1 of 3 cases", "layer maps x to x prime"),
        ("1 passed, 1 skipped", "attention scores"),
        ("not run", "readme links resolve")]
    run = checked_by(html).one("p", "checked-by-run").text()
    assert run.startswith("Latest recorded run: 2026-11-30 12:00 UTC, commit ") and "another commit" not in run
    assert [s.classes for s in checked_by(html).all(cls="test-status")][:2] == [
        ["test-status", "status-passed"], ["test-status", "status-failed"]]


def test_results_of_another_commit_say_so(tmp_path):
    out = built(tmp_path, results=lambda root, commit: write_results(tmp_path / "r.json", "f" * 40, dirty=True),
                git="yes")
    run = checked_by(page(out, "paper/notation.html")).one("p", "checked-by-run")
    assert "commit fffffff with uncommitted changes, another commit than this build" in run.text()
    assert "other-commit" in run.classes


def test_a_declaration_naming_no_page_fails_with_test_file_line_and_path(tmp_path):
    need_katex()
    root = fixture_repo(tmp_path / "repo", {"tests/test_bad.py": """
        import pytest


        @pytest.mark.checks("labml_nn/paper/attention.py",
                            "labml_nn/paper/gone.py")
        def test_a():
            pass


        @pytest.mark.checks(PAGE)
        def test_b():
            pass
        """})
    with pytest.raises(SiteError) as e:
        build(root, tmp_path / "out", results=False)
    assert (e.value.path, e.value.line) == ("tests/test_bad.py", 5)
    assert "'labml_nn/paper/gone.py', which is not a page" in str(e.value)
    assert "tests/test_bad.py:10: pytest.mark.checks(...) takes string paths" in str(e.value)


def test_a_malformed_results_file_fails_the_build(tmp_path):
    bad = tmp_path / "r.json"
    bad.write_text('{"tests": {"a": "maybe"}}')
    need_katex()
    with pytest.raises(SiteError) as e:
        build(fixture_repo(tmp_path / "repo", NOTATION), tmp_path / "out", results=bad)
    assert "the test results file cannot be read" in str(e.value)


# -- the pytest plugin that writes the results ------------------------------------------------------

def test_the_plugin_writes_outcomes_commit_and_date(tmp_path):
    """tests/conftest.py, copied into a small project, run by pytest in a subprocess."""
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    shutil.copy(REPO / "tests" / "conftest.py", project / "tests" / "conftest.py")
    (project / "setup.py").write_text("")
    (project / "tests" / "test_demo.py").write_text(textwrap.dedent("""
        import pytest

        pytestmark = pytest.mark.checks("labml_nn/x.py")


        def test_passes():
            pass


        def test_fails():
            assert False


        @pytest.mark.parametrize("n", [1, 2])
        def test_cases(n):
            if n == 2:
                pytest.skip("not this one")


        @pytest.fixture
        def broken():
            raise RuntimeError("setup fails")


        def test_errors(broken):
            pass


        class TestGroup:
            def test_method(self):
                pass
        """))
    env = {k: v for k, v in os.environ.items() if k != "TEST_RESULTS"}
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "p"]):
        subprocess.run(["git", "-C", str(project), *args], check=True, env=env, capture_output=True)
    (project / "tests" / "test_demo.py").write_text((project / "tests" / "test_demo.py").read_text() + "\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--strict-markers",
                           "tests", "--test-results", ".test-results/results.json"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr  # one test fails, nothing else goes wrong
    data = json.loads((project / ".test-results" / "results.json").read_text())
    head = subprocess.run(["git", "-C", str(project), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert data["commit"] == head and data["dirty"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", data["date"])
    assert data["tests"] == {
        "tests/test_demo.py::TestGroup::test_method": "passed",
        "tests/test_demo.py::test_cases[1]": "passed",
        "tests/test_demo.py::test_cases[2]": "skipped",
        "tests/test_demo.py::test_errors": "error",
        "tests/test_demo.py::test_fails": "failed",
        "tests/test_demo.py::test_passes": "passed",
    }
    other = tmp_path / "elsewhere.json"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", "-k", "passes",
                    "--test-results", str(other)], cwd=project, env=env, capture_output=True, timeout=120)
    assert json.loads(other.read_text())["tests"] == {"tests/test_demo.py::test_passes": "passed"}
    # A run without the option (a few tests by hand) leaves the suite's results as they were.
    before = (project / ".test-results" / "results.json").read_text()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", "-k", "passes"],
                   cwd=project, env=env, capture_output=True, timeout=120)
    assert (project / ".test-results" / "results.json").read_text() == before
