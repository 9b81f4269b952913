"""Safe sources: every path that becomes a URL of the site is a plain URL path segment, and the
build never reads a file through a symbolic link that leaves the repository."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from conftest_site import fixture_repo, need_katex, read_page
from utils.build import build
from utils.errors import SiteError
from utils.paths import safe_segment


def internal_hrefs_with_a_scheme(out: Path) -> list[str]:
    """Links of the listings, the pager and the search index that carry a URL scheme although
    they were made from a source path (external links written in prose are left out)."""
    found = []
    for page in out.rglob("*.html"):
        for nav in read_page(page.parent, page.name).all("nav"):
            if {"listing", "pager"} & set(nav.classes):
                found += [f"{page.name}: {a.attrs['href']}" for a in nav.all("a", href=True)
                          if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", a.attrs["href"])]
    index = (out / "search_index.js").read_text(encoding="utf-8")
    entries = json.loads(index.split("=", 1)[1].strip().rstrip(";"))
    found += [f"search: {e['u']}" for e in entries if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", e["u"])]
    return found


def build_must_refuse(tmp_path: Path, extra: dict[str, str], name: str) -> SiteError:
    """The build refuses the fixture with `extra`; if it does not, the test shows the unsafe
    links the site got instead (a file named `javascript:...` becomes a working script link)."""
    need_katex()
    root = fixture_repo(tmp_path / "repo", extra)
    try:
        build(root, tmp_path / "out")
    except SiteError as e:
        assert name in str(e), str(e)
        return e
    pytest.fail(f"the build accepted {name!r}; unsafe links on the site: "
                f"{internal_hrefs_with_a_scheme(tmp_path / 'out')}")


def test_a_module_named_like_a_script_url_is_refused(tmp_path):
    error = build_must_refuse(tmp_path, {"labml_nn/paper/javascript:alert(1).py": "x = 1\n"},
                              "javascript:alert(1).py")
    assert "URL path segment" in error.message


def test_a_folder_named_like_a_script_url_is_refused(tmp_path):
    error = build_must_refuse(tmp_path, {"labml_nn/javascript:alert(1)/model.py": "x = 1\n"},
                              "javascript:alert(1)")
    assert error.path == "labml_nn/javascript:alert(1)"


@pytest.mark.parametrize("name", ["a b.py", "a%20b.py", "a#b.py", "a?b.py", 'a"b.py', "a'b.py",
                                  "a<b>.py", "a\\b.py", ".hidden.py", "résumé.py"])
def test_unsafe_source_names_are_refused(tmp_path, name):
    build_must_refuse(tmp_path, {f"labml_nn/paper/{name}": "x = 1\n"}, name)


def test_unsafe_image_and_readme_folder_names_are_refused(tmp_path):
    build_must_refuse(tmp_path, {"labml_nn/paper/pictures/my plot.png": "png"}, "my plot.png")
    build_must_refuse(tmp_path / "b", {"labml_nn/odd:folder/readme.md": "# R\n"}, "odd:folder")


def test_unsafe_test_file_names_are_refused(tmp_path):
    build_must_refuse(tmp_path, {"tests/test_a:b.py": "def test_x():\n    pass\n"}, "test_a:b.py")


def test_safe_segments():
    for ok in ["relative_mha.py", "xl", "feed-forward.v2.md", "A1", "__init__.py"]:
        assert safe_segment(ok), ok
    for bad in ["", ".", "..", ".git", "a:b", "a b", "a%b", "a#b", "a?b", "a'b", 'a"b', "a<b", "a>b",
                "a\\b", "a/b", "é"]:
        assert not safe_segment(bad), bad


# -- symbolic links ------------------------------------------------------------------------------

@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder beside the repository, holding what a link must never reach."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.py").write_text('r"""# Secret\n\nNot part of the repository."""\nX = 1\n')
    (folder / "readme.md").write_text("# Secret readme\n")
    (folder / "plot.png").write_text("secret bytes")
    (folder / "sub").mkdir()
    (folder / "sub" / "model.py").write_text("Y = 2\n")
    return folder


def linked_build(tmp_path: Path, link: str, target: Path) -> SiteError | None:
    need_katex()
    root = fixture_repo(tmp_path / "repo")
    path = root / link
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    os.symlink(target, path)
    try:
        build(root, tmp_path / "out")
    except SiteError as e:
        return e
    return None


@pytest.mark.parametrize("link,target", [
    ("labml_nn/paper/secret.py", "secret.py"),
    ("labml_nn/paper/readme.md", "readme.md"),
    ("readme.md", "readme.md"),
    ("labml_nn/paper/pictures/plot.png", "plot.png"),
    ("labml_nn/linked", "sub"),
    ("tests/test_linked.py", "secret.py"),
])
def test_a_symlink_out_of_the_repository_is_refused(tmp_path, outside, link, target):
    error = linked_build(tmp_path, link, outside / target)
    assert error is not None, f"the build did not refuse {link} -> {outside / target}"
    assert link in str(error) and "outside the repository" in str(error), str(error)
    assert not any("secret" in p.read_text(errors="replace").lower()
                   for p in (tmp_path / "out").rglob("*") if p.is_file() and p.suffix != ".css")


def test_a_symlink_inside_the_repository_is_followed(tmp_path):
    need_katex()
    root = fixture_repo(tmp_path / "repo", {"labml_nn/paper/shared.py": 'r"""# Shared\n"""\nZ = 3\n'})
    os.symlink(root / "labml_nn/paper/shared.py", root / "labml_nn/paper/alias.py")
    os.symlink(root / "labml_nn/loose", root / "labml_nn/loose_alias")
    build(root, tmp_path / "out")
    assert "Z = 3" in read_page(tmp_path / "out", "paper/alias.html").one("div", "sections").text()
    assert (tmp_path / "out/loose_alias/thing.html").is_file()


def test_a_symlink_loop_inside_the_repository_ends(tmp_path):
    need_katex()
    root = fixture_repo(tmp_path / "repo")
    os.symlink(root / "labml_nn/loose", root / "labml_nn/loose/again")
    build(root, tmp_path / "out")  # returns: the loop is walked once


def test_a_broken_symlink_fails_with_its_name(tmp_path):
    need_katex()
    root = fixture_repo(tmp_path / "repo")
    os.symlink(root / "labml_nn/paper/gone.py", root / "labml_nn/paper/dangling.py")
    with pytest.raises(SiteError) as e:
        build(root, tmp_path / "out")
    assert "labml_nn/paper/dangling.py" in str(e.value) and "broken symbolic link" in str(e.value)
