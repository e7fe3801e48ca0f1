"""Fixtures of the app's tests (AppTest): a fresh data folder for every test, the run
registry in it, and the tiny untrained U-Net registered as the active model.

A test file whose pages need another model overrides ``active_model`` (the slide page
uses the trained disc model).
"""

from __future__ import annotations

import pytest
from support import fresh_app_environment

from nuclei_core.registry import Registry


@pytest.fixture(autouse=True)
def fresh_environment(tmp_path, monkeypatch):
    """A fresh data folder, no default model, no samples; empty Streamlit caches."""
    yield from fresh_app_environment(tmp_path, monkeypatch)


@pytest.fixture
def registry(fresh_environment):
    """The run registry of the fresh data folder."""
    return Registry(fresh_environment / "data" / "registry.sqlite3")


@pytest.fixture
def active_model(registry, tiny_model_file):
    """The tiny model registered and made active."""
    card = {"name": "tiny", "architecture": "unet", "final_metrics": {"val_dice": 0.5}}
    run = registry.register_model_card(card, tiny_model_file, None)
    registry.set_active_model(run.id)
    return run
