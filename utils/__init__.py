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

Build with `python -m utils.build --out docs` (after `cd utils && npm ci`).
"""
