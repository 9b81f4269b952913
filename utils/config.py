"""Site configuration: the one place that names the repository, its branch and the notebooks."""

# Where "view source" and "open in Colab" links point.
REPO_URL = "https://github.com/labml-memory/labml_nn"
BRANCH = "main"

# The package whose modules become pages; its folder is the site root.
PACKAGE = "labml_nn"

# The module whose "Notation" section holds the site's table of symbols (`| symbol | meaning | in code |`).
SITE_NOTATION = "labml_nn/transformers/__init__.py"

SITE_TITLE = "labml_nn"
SITE_DESCRIPTION = "Annotated PyTorch implementations of the memory transformers"

# Paper folder (relative to the repository root) -> notebook name in notebooks/<name>.ipynb.
# A page uses the entry of its own folder or of the nearest folder above it.
NOTEBOOKS = {
    "labml_nn/transformers/xl": "transformer_xl",
    "labml_nn/transformers/compressive": "compressive_transformer",
    "labml_nn/transformers/feedback": "feedback_transformer",
}


def source_url(repo_path: str) -> str:
    """The repository page of a file, `repo_path` relative to the repository root."""
    return f"{REPO_URL}/blob/{BRANCH}/{repo_path}"
