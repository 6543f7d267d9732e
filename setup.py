"""Compiles the business-time core (services/sla/_clock_core.pyx); everything else is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize([Extension("services.sla._clock_core", ["services/sla/_clock_core.pyx"])]))
