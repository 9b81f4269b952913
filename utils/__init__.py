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

So a link written relative to a source file, `[x](relative_mha.html)` or
`[x](labml_nn/transformers/xl/readme.md)`, lands on the right page. Links to `.md`/`.py` files
are rewritten to their pages; links to other files of the repository go to the repository.

Commands (`make site` and `make serve` run the first after `cd utils && npm ci`):

```bash
cd utils && npm ci && cd ..                     # KaTeX, pinned by utils/package-lock.json
python -m utils.build --out docs                # build and check; fails with file:line
python -m utils.build --out /tmp/draft --no-check   # a draft with broken links allowed
python -m pytest -q tests/test_site_*.py        # splitter, math, links, and a real browser
```

The repository URL, branch and the paper-folder-to-notebook table live in `utils/config.py`.
KaTeX and Pygments styles are copied into the site's `static/` folder; no page loads anything
from another host, and search works from `file://` (the index is `search_index.js`).
"""
