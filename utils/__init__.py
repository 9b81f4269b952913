r"""The annotated-site generator: Python sources and readmes in, a static side-by-side site out.

The pipeline is three layers, each in its own module:

1. **split** (`utils/split.py`): a module is read as text and cut into sections with `tokenize`
   and `ast`; an own-line `#` block or a class/function docstring is prose, the lines that
   follow are its code. Nothing is imported.
2. **render** (`utils/markdown.py`, `utils/katex.py`, `utils/highlight.py`): prose is Markdown
   with `$...$` math (markdown-it-py with the dollar-math and table plugins); every formula of
   the build is typeset by one KaTeX process; code is highlighted by Pygments into one span per
   real source line.
3. **write and check** (`utils/build.py`, `utils/check.py`): Jinja2 templates produce the pages,
   then every internal link and anchor is resolved and every `src`/`href` that would load a
   resource is checked to stay on the site. Any failure stops the build with a file and line.

URL scheme: folders mirror the site's URLs, with the package folder as the site root.

| source                                   | page                                |
|------------------------------------------|-------------------------------------|
| `readme.md` (repository root)            | `index.html` (the home page)        |
| `labml_nn/__init__.py`                   | `labml_nn.html`                     |
| `labml_nn/transformers/xl/__init__.py`   | `transformers/xl/index.html`        |
| `labml_nn/transformers/xl/relative_mha.py` | `transformers/xl/relative_mha.html` |
| `labml_nn/transformers/xl/readme.md`     | `transformers/xl/readme.html`       |
| a folder without `__init__.py`           | a generated `index.html` listing it |
| `tests/test_xl.py`                       | `tests/test_xl.html` (plain source) |

So a link written relative to a source file, `[x](relative_mha.html)` or
`[x](labml_nn/transformers/xl/readme.md)`, lands on the right page. Links to `.md`/`.py` files
are rewritten to their pages; links to other files of the repository go to the repository.

**Safe sources** (`utils/paths.py`). Every file and folder name that becomes part of a URL (pages,
listings, the pager, search results, copied images) must be a plain URL path segment: ASCII
letters, digits, `_`, `-` and `.`, not starting with a dot. Anything else (`javascript:alert(1)`,
spaces, `%`, `#`, `?`, quotes, `<>`, backslashes, non-ASCII) fails the build naming the file. A
symbolic link is followed only while it resolves inside the repository; one that leaves it (a
readme, a module, an image, a test, a linked folder) fails the build.

**Numbers come from the benchmark reports** (`utils/reports.py`). Measured numbers are never typed
into prose. In any prose (module, class and function docstrings, `#` comments, readmes, front-matter
summaries) `{report:NAME.KEY}` is replaced by `figures[KEY]` of `bench/reports/NAME.json`,
`{"figures": {"train_vs_peer": "1.27×"}}`, as inline Markdown; NAME has no dots and KEY is all
that follows the first dot. Code spans, code blocks and the code column keep the placeholder as
written; inside math it fails. In a readme, a line that is only `<!-- report: FILE.md -->` is
replaced on the site by the Markdown of `bench/reports/FILE.md` (GitHub shows nothing there). A
missing report, `figures` object or key fails the build with the page, the line and the placeholder.

**Checked by** (`utils/checked_by.py`). Tests declare the pages whose claims they check with
`@pytest.mark.checks("labml_nn/transformers/xl/relative_mha.py")` on a test function, class or
method, or `pytestmark = pytest.mark.checks(...)` (a mark or a list of marks) for a whole file; the
marker is registered in `tests/conftest.py`. The generator reads `tests/*.py` with `ast`, never
imports them; a declaration naming no page fails the build with the test file and line. Each page
ends with a "Checked by" section (`#checked-by`): every declaring test, its name read as a
sentence, a link to it on its test page, and its outcome in the latest recorded run. `make test`
writes `.test-results/results.json` (date, commit, a dirty flag, one outcome per node id; see
`tests/conftest.py`); `make site` reads it when present. Parametrized cases and a class's methods
count together; a page says when the results come from another commit, and without results it
lists the tests with no status.

**Notation that links to code** (`utils/notation.py`). A module docstring's notation table
(`| symbol | meaning | code | shape |`) maps each symbol (`$...$`, several separated by commas) to
the backticked names of its code cell, pairwise when the counts agree, else each symbol to all.
The build fails when the page's code never uses a table name (for `memory.mem[l]`, the name
`mem`), listing every failure of every page (`--notation-check report` prints them instead, as a
stopgap). On the page, every occurrence of a symbol in the prose, the equations and the table,
and every code token of its names, are marked: hovering or focusing one (Tab reaches the first of
each per section, and every cell of the table) highlights the others (`utils/static/site.js`).

**Code tools.** Each section of the code column, and each test page, has a copy button (it copies
the shown source lines, without line numbers) and a link to the same lines in the repository
(`utils/config.py`: `REPO_URL`, `BRANCH`; `#L10-L20`); code blocks of the prose have a copy button.

Commands (`make site` and `make serve` run the first after `cd utils && npm ci`):

```bash
cd utils && npm ci && cd ..                     # KaTeX, pinned by utils/package-lock.json
python -m utils.build --out docs                # build and check; fails with file:line
python -m utils.build --out /tmp/draft --no-check   # a draft with broken links allowed
python -m utils.build --out docs --test-results .test-results/results.json  # statuses from a run
python -m utils.build --out docs --no-test-results  # list the tests without statuses
python -m utils.build --out docs --notation-check report  # print notation problems, don't fail
python -m pytest -q tests/test_site_*.py        # splitter, math, links, and a real browser
CI=true python -m pytest -q tests/test_site_*.py    # the same, where a missing tool fails
```

The repository URL, branch and the paper-folder-to-notebook table live in `utils/config.py`.
KaTeX and Pygments styles are copied into the site's `static/` folder; no page loads anything
from another host, and search works from `file://` (the index is `search_index.js`).
"""
