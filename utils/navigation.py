"""The navigation pass: breadcrumbs, a folder's listing, the pager, and the notebook in Colab.

A folder is read in order: its index, its readme, then its modules by name; the pager links each
page to the one before and after it. A listing shows each page of a folder (with its title and
summary) and its subfolders; the home page lists the tests too. A page of a paper folder with a
notebook (`config.NOTEBOOKS`, the nearest folder at or above the page's) links to it in Colab.
"""
from __future__ import annotations

import posixpath

from . import config
from .pages import TESTS, Page, Pass, Site, rel_url, site_dir


def colab_url(notebook: str) -> str:
    """Colab's URL that opens `notebooks/<notebook>.ipynb` straight from the repository."""
    owner_repo = config.REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{config.BRANCH}/notebooks/{notebook}.ipynb"


def notebook_for(site: Site, repo_dir: str) -> str | None:
    """The notebook of the nearest paper folder at or above `repo_dir`, if it exists."""
    parts = repo_dir.split("/")
    names = [config.NOTEBOOKS.get("/".join(parts[:i])) for i in range(len(parts), 0, -1)]
    name = next((n for n in names if n), None)
    return name if name and (site.root / "notebooks" / f"{name}.ipynb").is_file() else None


def folder_sequence(site: Site, folder: str) -> list[Page]:
    """The pages of one folder in reading order: index, readme, then modules by name."""
    order = {"index.html": 0, "readme.html": 1}
    pages = [p for p in site.pages if p.folder == folder and p is not site.folder_pages[""]]
    return sorted(pages, key=lambda p: (order.get(posixpath.basename(p.out), 2), p.out))


class Navigation(Pass):
    def context(self, page: Page, site: Site) -> dict:
        seq = folder_sequence(site, page.folder) if page.out != "index.html" else []
        at = seq.index(page) if page in seq else -1
        link = (lambda p: {"title": p.title, "url": rel_url(p.out, page)})
        notebook = notebook_for(site, page.folder)
        return {"crumbs": self.breadcrumbs(page, site), "colab_url": colab_url(notebook) if notebook else None,
                "listing": self.listing(page, site) if page.listing_of is not None else None,
                "prev": link(seq[at - 1]) if at > 0 else None,
                "next": link(seq[at + 1]) if 0 <= at < len(seq) - 1 else None}

    @staticmethod
    def listing(page: Page, site: Site) -> list[dict]:
        folder = page.listing_of
        items = [{"title": p.title, "summary": p.summary_html, "url": rel_url(p.out, page),
                  "name": posixpath.basename(p.src or p.out), "kind": "page"}
                 for p in folder_sequence(site, folder) if p is not page]
        subfolders = sorted(f for f in site.folder_pages if f and f != folder and posixpath.dirname(f) == folder)
        if page.out == "index.html" and TESTS in site.folder_pages:
            subfolders.append(TESTS)
        for f in subfolders:
            sub = site.folder_pages[f]
            items.append({"title": sub.title, "summary": sub.summary_html, "url": rel_url(sub.out, page),
                          "name": posixpath.basename(f) + "/", "kind": "folder"})
        return items

    @staticmethod
    def breadcrumbs(page: Page, site: Site) -> list[dict]:
        crumbs = [{"title": "Home", "url": rel_url("index.html", page)}]
        parts = site_dir(page.folder).split("/") if site_dir(page.folder) else []
        repo_parts = page.folder.split("/")
        for i, name in enumerate(parts):
            target = site.folder_pages.get("/".join(repo_parts[: len(repo_parts) - len(parts) + i + 1]))
            if target is not None and target is not page:
                crumbs.append({"title": name, "url": rel_url(target.out, page)})
        if page.out != "index.html":
            is_index = posixpath.basename(page.out) == "index.html"
            name = posixpath.basename(page.folder) if is_index or not page.src else posixpath.basename(page.src)
            crumbs.append({"title": name, "url": None})
        return crumbs
