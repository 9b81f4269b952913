r"""The annotated-site generator: Python sources and readmes in, a static side-by-side site out.

A short pipeline, driven by `build.py`, reading every source as text (nothing is imported):

1. **find** (`pages.py`): which pages there are and where each goes; where a link written in a
   source lands. Every name that becomes a URL is a safe segment and every file read stays inside
   the repository (`paths.py`).
2. **split and read** (`split.py`, `read.py`): a module is cut into sections with `tokenize` and
   `ast` (an own-line `#` block or a docstring is prose, the lines that follow are its code);
   prose is Markdown with `$...$` math (`markdown.py`).
3. **render** (`katex.py`, `highlight.py`): every formula of the build is typeset by one KaTeX
   process; code is highlighted by Pygments, one span per real source line.
4. **write** (`write.py`): one Jinja2 template (`templates/page.html`), the static files.
5. **check** (`check.py`): every page is read back with `html.parser`; every internal link and
   anchor must resolve and nothing may load from another host.

Any problem of the sources stops the build with `file:line: message`; warnings are printed and the
build goes on. Each feature is a pass (`pages.Pass`) with hooks at fixed points of the pipeline,
its own module and its own tests:

| pass | module | what it adds |
|---|---|---|
| report figures | `reports.py` | `{report:NAME.KEY}` from `bench/reports/NAME.json`; `<!-- report: FILE.md -->` in readmes |
| notation | `notation.py` | a page's notation table links its symbols to the code's names; the lint (a warning) |
| one notation | `site_notation.py` | each page's table agrees with the site's table of symbols (warnings) |
| Checked by | `checked_by.py` | the tests that declare a page (`pytest.mark.checks`) with their recorded outcomes |
| navigation | `navigation.py` | breadcrumbs, folder listings, the pager |
| search | `search.py` | `search_index.js` (titles, headings, prose, names, identifiers) |

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
`[x](labml_nn/transformers/xl/readme.md)`, lands on the right page. Links to `.md`/`.py` files are
rewritten to their pages; links to other files of the repository go to the repository.

**Code tools.** Each section of the code column, and each test page, has a copy button (it copies
the shown source lines, without line numbers) and a link to the same lines in the repository
(`config.py`: `REPO_URL`, `BRANCH`); code blocks of the prose have a copy button.

```bash
cd utils && npm ci && cd ..                     # KaTeX, pinned by utils/package-lock.json
python -m utils.build --out docs                # build and check; fails with file:line
python -m utils.build --out /tmp/draft --no-check   # a draft with broken links allowed
python -m utils.build --out docs --test-results .test-results/results.json  # statuses from a run
python -m utils.build --out docs --no-test-results  # list the tests without statuses
python -m pytest -q tests/test_site_*.py        # every stage and pass, and a real browser
CI=true python -m pytest -q tests/test_site_*.py    # the same, where a missing tool fails
```

KaTeX and the Pygments styles are copied into the site's `static/` folder; no page loads anything
from another host, and search works from `file://` (the index is a script, `search_index.js`).
"""
