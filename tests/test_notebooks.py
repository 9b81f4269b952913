"""Every notebook runs top to bottom in its small configuration, needs nothing but the installed package,
and is committed ready for Colab."""
import re

import nbformat
import pytest

from scripts.run_notebooks import execute, has_outputs, notebook_paths
from utils.config import NOTEBOOKS, REPO_URL

pytestmark = pytest.mark.checks("labml_nn/transformers/xl/readme.md", "labml_nn/transformers/compressive/readme.md",
                              "labml_nn/transformers/feedback/readme.md")

PATHS = notebook_paths()


def test_every_paper_has_its_notebook():
    assert {p.stem for p in PATHS} >= set(NOTEBOOKS.values())


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_is_committed_without_outputs(path):
    assert not has_outputs(path), f"clear it with: python scripts/run_notebooks.py --clear {path.stem}"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_first_code_cell_installs_the_package_only_in_colab(path):
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code").source
    assert re.search(r'^REPO_URL = "(.*)"$', first, re.M).group(1) == REPO_URL
    assert "if 'google.colab' in sys.modules:" in first
    assert "pip install -q git+{REPO_URL}" in first


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_needs_only_the_installed_package(path):
    # No clone of the repository, no path tricks, no import of its scripts, benchmarks or site generator.
    source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert "git clone" not in source and "sys.path" not in source
    assert not re.search(r"^\s*(from|import)\s+(utils|scripts|bench|tests)\b", source, re.M)


# The data: `TINY_SHAKESPEARE_PATH` (which `make test` sets when there is a local copy), else a download.
# The kernel starts in an empty temporary directory: only the installed package is importable.
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs_top_to_bottom(path):
    nb = execute(path, small=True, timeout=300)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
