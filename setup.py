"""Package discovery that pyproject.toml cannot state: the repository's top-level ``resources/``
folder is installed as the importable package ``rea2seg_resources`` (``core.paths.resource_path``
reads it through ``importlib.resources``). Everything else lives in pyproject.toml."""

from setuptools import find_namespace_packages, setup

# Namespace discovery: data-only folders (core/store/migrations, resources/demo, …) are listed
# as packages too, so setuptools ships their files without "package would be ignored" warnings.
resources = [
    "rea2seg_resources",
    *(f"rea2seg_resources.{p}" for p in find_namespace_packages("resources")),
]

setup(
    packages=[*find_namespace_packages(include=["core*", "rea2seg_gui*"]), *resources],
    package_dir={"rea2seg_resources": "resources"},
)
