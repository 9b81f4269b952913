"""Every notebook runs top to bottom in its small configuration, and is committed ready for Colab."""
import re

import nbformat
import pytest

from utils.config import NOTEBOOKS, REPO_URL
from utils.run_notebooks import execute, has_outputs, notebook_paths

PATHS = notebook_paths()


def test_every_paper_has_its_notebook():
    assert {p.stem for p in PATHS} >= set(NOTEBOOKS.values())


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_is_committed_without_outputs(path):
    assert not has_outputs(path), f"clear it with: python -m utils.run_notebooks --clear {path.stem}"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_first_code_cell_installs_from_the_repository_only_in_colab(path):
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code").source
    assert re.search(r'^REPO_URL = "(.*)"$', first, re.M).group(1) == REPO_URL
    assert "if 'google.colab' in sys.modules:" in first
    assert "pip install -q git+{REPO_URL}" in first


# The data: `TINY_SHAKESPEARE_PATH` (which `make test` sets when there is a local copy), else a download.
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs_top_to_bottom(path):
    nb = execute(path, small=True, timeout=300)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
