"""Repository-wide pytest set-up (doctests of ``neurocode/`` and the tests in ``tests/``).

Importing Brian2 replaces pytest's doctest collector with one that cannot collect the
doctests of a package's ``__init__.py``; the stock collector is put back here.
"""

import brian2  # noqa: F401  (imported first, so that its replacement happens before ours)
from _pytest import doctest as _pytest_doctest

if _pytest_doctest.DoctestModule.__name__ == "OurDoctestModule":
    _pytest_doctest.DoctestModule = _pytest_doctest.DoctestModule.__bases__[0]
