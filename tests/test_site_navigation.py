"""The navigation pass: breadcrumbs, a folder's listing in reading order, and the pager."""
from __future__ import annotations

import pytest

from conftest_site import built_fixture_site, fixture_repo, need_katex, read_page
from utils import config
from utils.build import build
from utils.navigation import colab_url


def hrefs(site, name: str) -> set[str]:
    return {a.attrs["href"] for a in read_page(site, name).all("a", href=True)}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return built_fixture_site(tmp_path_factory, {"labml_nn/paper/zeta.py": 'r"""\n# Zeta\n"""\nZ = 1\n',
                                                 "tests/test_zeta.py": "def test_z():\n    pass\n"})


def pager(site, name: str) -> dict[str, str]:
    """rel -> (href, title) of the pager's links (each says "Previous" or "Next" above the title)."""
    nav = read_page(site, name).all("nav", "pager")
    links = nav[0].all("a") if nav else []
    assert [a.one("span").text() for a in links] == [{"prev": "Previous", "next": "Next"}[a.attrs["rel"]] for a in links]
    return {a.attrs["rel"]: (a.attrs["href"], a.text()[len(a.one("span").text()):]) for a in links}


def test_the_pager_walks_a_folder_index_readme_then_modules_by_name(site):
    # paper/: index.html (the package __init__), readme.html, attention.html, zeta.html
    assert pager(site, "paper/index.html") == {"next": ("readme.html", "The paper's readme")}
    assert pager(site, "paper/readme.html") == {"prev": ("index.html", "A paper"),
                                                 "next": ("attention.html", "Fixture attention")}
    assert pager(site, "paper/attention.html") == {"prev": ("readme.html", "The paper's readme"),
                                                    "next": ("zeta.html", "Zeta")}
    assert pager(site, "paper/zeta.html") == {"prev": ("attention.html", "Fixture attention")}
    assert pager(site, "index.html") == {}


def test_breadcrumbs_lead_home_through_the_folders(site):
    crumbs = read_page(site, "paper/attention.html").one("nav", "crumbs").all("li")
    assert [(li.text().strip(), [a.attrs["href"] for a in li.all("a")]) for li in crumbs] == [
        ("Home", ["../index.html"]), ("paper", ["index.html"]), ("attention.py", [])]
    assert crumbs[-1].attrs.get("aria-current") == "page"


def test_listings_show_pages_then_subfolders_and_the_home_page_lists_the_tests(site):
    def entries(name):
        return [(li.one(cls="listing-name").text(), li.one("a").attrs["href"])
                for li in read_page(site, name).one("nav", "listing").all("li")]

    assert entries("paper/index.html") == [("readme.md", "readme.html"), ("attention.py", "attention.html"),
                                           ("zeta.py", "zeta.html")]
    assert entries("index.html") == [("__init__.py", "labml_nn.html"), ("loose/", "loose/index.html"),
                                     ("paper/", "paper/index.html"), ("tests/", "tests/index.html")]


def test_each_page_links_to_its_source(site):
    links = [a.attrs["href"] for a in read_page(site, "paper/attention.html").one("p", "page-links").all("a")]
    assert links == [config.source_url("labml_nn/paper/attention.py")]


def test_colab_link_when_the_paper_has_a_notebook(tmp_path):
    need_katex()
    from utils import config
    folder, name = next(iter(config.NOTEBOOKS.items()))
    root = fixture_repo(tmp_path / "repo", {
        f"{folder}/__init__.py": 'r"""\n---\ntitle: P\n---\n"""\n',
        f"{folder}/model.py": "x = 1\n",
        f"notebooks/{name}.ipynb": "{}",
    })
    build(root, tmp_path / "out")
    site_folder = folder.removeprefix(config.PACKAGE + "/")
    colab = [h for h in hrefs(tmp_path / "out", f"{site_folder}/model.html") if "colab" in h]
    assert colab == [colab_url(name)] and colab[0].startswith("https://colab.research.google.com/github/")
    assert colab[0].endswith(f"/blob/{config.BRANCH}/notebooks/{name}.ipynb")
    assert not [h for h in hrefs(tmp_path / "out", "paper/attention.html") if "colab" in h]
    # without the notebook file, no link
    (root / f"notebooks/{name}.ipynb").unlink()
    build(root, tmp_path / "out2")
    assert not [h for h in hrefs(tmp_path / "out2", f"{site_folder}/model.html") if "colab" in h]
