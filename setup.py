"""Package list for setuptools (the rest of the metadata is in pyproject.toml).

The top-level ``training/`` folder stays where the repository keeps it and ships in the wheel as
``tase_search.training`` (with its configs as package data), so ``tase-search train`` imports it
like any module of the package. pyproject's ``packages.find`` cannot add such a mapped package to
the ones it finds, hence this file.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["tase_search", "tase_search.*"]), "tase_search.training"],
    package_dir={"tase_search.training": "training"},
)
