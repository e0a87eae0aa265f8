"""Package discovery (everything else is in pyproject.toml).

``methods/`` and ``benchmark/`` live at the top of the repository but install under the
library's namespace (``dualreal_bench.methods``, ``dualreal_bench.benchmark``; the mapping is
``[tool.setuptools] package-dir`` in pyproject.toml), which pyproject's static ``packages.find``
cannot express. Every package below each root is found, so a new subpackage never needs
listing (tests/test_packaging.py builds the wheel and checks every module is in it).
"""

from setuptools import find_packages, setup


def _under(name: str, where: str) -> list[str]:
    return [name] + [f"{name}.{sub}" for sub in find_packages(where)]


setup(
    packages=find_packages(include=["dualreal_bench", "dualreal_bench.*"])
    + _under("dualreal_bench.methods", "methods")
    + _under("dualreal_bench.benchmark", "benchmark")
)
