"""Packages the `g2c` module the CMake build made (<build>/python/g2c: the _g2c extension and the .py
files); it compiles nothing. From the repository root, after `make build`:

    /usr/bin/python3 -m venv --system-site-packages .venv
    .venv/bin/pip install --no-build-isolation ./python

G2C_PYTHON_BUILD names another build's python folder (default: ../build/release/python)."""
import glob
import os

from setuptools import setup
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
BUILT = os.path.abspath(os.environ.get("G2C_PYTHON_BUILD", os.path.join(HERE, "..", "build", "release", "python")))
if not glob.glob(os.path.join(BUILT, "g2c", "_g2c*.so")):
    raise SystemExit(f"no built g2c module under {BUILT}: run `make build` first (or set G2C_PYTHON_BUILD)")


class BinaryDistribution(Distribution):
    """The package holds a compiled extension: the wheel is tagged for this platform, not py3-none-any."""

    def has_ext_modules(self):
        return True


setup(
    name="g2c",
    version="0.1.0",
    description="The course's g2c.inference API over g2c's C++ inference engine and backends",
    packages=["g2c", "g2c.inference"],
    package_dir={"": os.path.relpath(BUILT, HERE)},
    package_data={"g2c": ["_g2c*.so"]},
    python_requires=">=3.11",
    distclass=BinaryDistribution,
)
