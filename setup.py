"""Package metadata for labml_nn: annotated implementations of the memory transformers."""
import re
from pathlib import Path

from setuptools import find_packages, setup

# One version, in labml_nn/__init__.py (model files record it).
VERSION = re.search(r'^__version__ = "([^"]+)"', Path(__file__).with_name("labml_nn").joinpath("__init__.py")
                    .read_text(encoding="utf-8"), re.M).group(1)

setup(
    name="labml_nn",
    version=VERSION,
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
        # Model files: weights as safetensors, save_pretrained / from_pretrained / push_to_hub.
        "safetensors>=0.4.3",
        "huggingface_hub>=0.23",
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
            # The GPU benchmark's peer; its test runs on the CPU (`python -m bench.gpu --device cpu --tiny`).
            "x-transformers==2.31.10",
        ],
        # The pictures module (labml_nn.experiments.pictures) and the notebooks draw with matplotlib.
        "notebooks": ["matplotlib"],
        "docs": [
            "markdown-it-py>=3",
            "mdit-py-plugins>=0.4",
            "pygments",
            "jinja2>=3",
        ],
    },
)
