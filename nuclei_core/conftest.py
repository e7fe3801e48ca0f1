"""Set-up shared by the docstring examples of ``nuclei_core`` (pytest runs them with
``--doctest-modules``).

Every example runs in its own empty data folder (``$NUCLEI_DATA_DIR`` points to a
temporary folder, so no example touches the real one) and finds ``registry`` there:
the run registry of that folder, as ``Registry()`` opens it.
"""

from __future__ import annotations

import pytest

from nuclei_core.locations import DATA_DIR_ENV
from nuclei_core.registry import Registry


@pytest.fixture(autouse=True)
def _example_data_folder(doctest_namespace, tmp_path, monkeypatch):
    """A temporary data folder for each example, and ``registry`` in its namespace."""
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    doctest_namespace["registry"] = Registry()
