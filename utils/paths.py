"""Safe sources: which repository paths may become URLs, and which files the build may read.

Every folder and file that becomes a page, a listed link, a pager link, a search result or a
copied file keeps its name in the site's URL. A name is accepted only when it is a plain URL path
segment: ASCII letters, digits, `_`, `-` and `.`, not starting with a dot. So no source can
smuggle a scheme (`javascript:alert(1)`), an escape (`%`), a fragment (`#`), a query (`?`), a
space, a quote or markup into a link.

The build reads files only inside the repository: a file or folder that is a symbolic link may be
followed while it resolves inside the repository root, and a link that leaves it fails the build.
"""
from __future__ import annotations

import re
from pathlib import Path

from .errors import SiteError

SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def safe_segment(name: str) -> bool:
    """Whether `name` (one path segment) may appear in a URL of the site."""
    return bool(SEGMENT.fullmatch(name)) and name not in (".", "..")


def check_segments(repo_path: str, what: str = "source") -> None:
    """Fail unless every segment of the repository-relative `repo_path` is a safe segment."""
    for segment in repo_path.split("/"):
        if not safe_segment(segment):
            raise SiteError(repo_path, 1,
                            f"the {what} name {segment!r} is not a safe URL path segment: a file or "
                            "folder that becomes part of the site may use only ASCII letters, digits, "
                            "'_', '-' and '.', and may not start with a dot; rename it")


def inside(root: Path, repo_path: str) -> Path:
    """The real path of `root/repo_path`, which must stay inside the repository `root`.

    A symbolic link on the way (the file itself or any folder above it) is followed only while
    it resolves inside the repository."""
    real_root = root.resolve()
    path = root / repo_path
    real = path.resolve()
    if real != real_root and real_root not in real.parents:
        raise SiteError(repo_path, 1,
                        f"is a symbolic link (or lies in a linked folder) that resolves to {real}, "
                        "outside the repository; the site is built from the repository's own files "
                        "only: copy the file in or remove the link")
    if not real.exists():
        raise SiteError(repo_path, 1, f"is a broken symbolic link (to {real}): mend or remove it")
    return real


def read_text(root: Path, repo_path: str) -> str:
    """The text of a repository file, refusing links that leave the repository."""
    return inside(root, repo_path).read_text(encoding="utf-8")
