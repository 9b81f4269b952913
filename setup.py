"""Package metadata for labml_nn: annotated implementations of the memory transformers."""
from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="labml_nn",
    version="0.1.0",
    description="Annotated PyTorch implementations of Transformer-XL, the Compressive Transformer "
                "and the Feedback Transformer, with a side-by-side literate site",
    long_description=Path(__file__).with_name("readme.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["labml_nn", "labml_nn.*"]),
    package_data={"labml_nn": ["**/*.md"]},
    # torch is left as a range for users; this repository's own install paths pin it
    # through constraints.txt (the CPU wheel 2.13.0).
    install_requires=[
        "torch>=2.1",
        "labml>=0.5.3",
        "einops>=0.7",
        "numpy",
    ],
    extras_require={
        "dev": [
            "pytest>=7",
            "hypothesis",
            "nbclient",
            "nbformat",
            "ipykernel",
            "matplotlib",
            "playwright",
        ],
        "docs": [
            "markdown-it-py>=3",
            "mdit-py-plugins>=0.4",
            "pygments",
            "jinja2>=3",
        ],
    },
)
