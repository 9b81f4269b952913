"""
Execute every notebook in `notebooks/` top to bottom.

```
python scripts/run_notebooks.py                    # all notebooks, small configuration
python scripts/run_notebooks.py transformer_xl     # one of them
python scripts/run_notebooks.py --full             # the full configuration (minutes each)
python scripts/run_notebooks.py --clear            # strip outputs in place, as they are committed
```

The notebooks are executed in memory with nbclient and never written back, so the committed files
stay free of outputs. `LABML_NN_SMALL=1` is set for the kernel unless `--full` is given; the data
comes from `TINY_SHAKESPEARE_PATH` when it is set (the notebooks download it otherwise). Each kernel
starts in a fresh temporary directory, so nothing of the repository is importable from it but the
installed package, as in Colab after `pip install`. `make notebooks` runs this script in a fresh
virtual environment that has only the package installed (not in editable mode).
"""

import argparse
import os
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"


def notebook_paths(names: Sequence[str] = ()) -> List[Path]:
    """The notebooks called `names` (all of them when empty), sorted by name."""
    paths = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
    if names:
        wanted = {n.removesuffix(".ipynb") for n in names}
        unknown = wanted - {p.stem for p in paths}
        if unknown:
            raise SystemExit(f"no notebook called {', '.join(sorted(unknown))} in {NOTEBOOKS_DIR}")
        paths = [p for p in paths if p.stem in wanted]
    return paths


def execute(path: Path, small: bool = True, timeout: int = 600):
    """Run the notebook at `path` in a fresh kernel started in an empty temporary directory; returns the
    executed notebook. A failing cell raises `nbclient.exceptions.CellExecutionError` naming the cell
    and the error."""
    import tempfile

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env_before = os.environ.get("LABML_NN_SMALL")
    # The kernel inherits this process's environment.
    if small:
        os.environ["LABML_NN_SMALL"] = "1"
    else:
        os.environ.pop("LABML_NN_SMALL", None)
    try:
        with tempfile.TemporaryDirectory(prefix="labml_nn_notebook_cwd_") as cwd:
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": cwd}})
            client.execute()
    finally:
        if env_before is None:
            os.environ.pop("LABML_NN_SMALL", None)
        else:
            os.environ["LABML_NN_SMALL"] = env_before
    return nb


def has_outputs(path: Path) -> bool:
    import nbformat
    nb = nbformat.read(path, as_version=4)
    return any(c.cell_type == "code" and (c.outputs or c.execution_count) for c in nb.cells)


def clear_outputs(path: Path) -> None:
    """Remove outputs and execution counts in place."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Execute the notebooks top to bottom.")
    parser.add_argument("names", nargs="*", help="notebook names (default: all)")
    parser.add_argument("--full", action="store_true", help="the full configuration instead of LABML_NN_SMALL=1")
    parser.add_argument("--clear", action="store_true", help="strip outputs in place instead of executing")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    failed = []
    for path in notebook_paths(args.names):
        if args.clear:
            clear_outputs(path)
            print(f"cleared {path.relative_to(ROOT)}")
            continue
        start = time.perf_counter()
        try:
            execute(path, small=not args.full, timeout=args.timeout)
            print(f"ok     {path.relative_to(ROOT)} ({time.perf_counter() - start:.0f} s)", flush=True)
        except Exception as error:  # report every notebook, then fail
            failed.append(path.name)
            print(f"FAILED {path.relative_to(ROOT)} ({time.perf_counter() - start:.0f} s)\n{error}", flush=True)
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
