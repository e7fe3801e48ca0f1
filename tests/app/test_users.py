"""Users kept apart on a served app: own datasets and models, shared ones read-only, the
operator who changes the default; the session's model kept over a reload and told when
it was deleted elsewhere (ui.signin.current_user, ui.state.session_model, pages/train.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from support import APP, app_page, start_app, texts

from nuclei_core.access.passwords import hash_password
from nuclei_core.access.users import User
from nuclei_core.datasets.user_write import save_training_image
from nuclei_core.registry import catalogue
from ui import signin

LAB_PASSWORD = "lab password 42"
OPERATOR_PASSWORD = "operator password 7"


@pytest.fixture(scope="module")
def hashes():
    return hash_password(LAB_PASSWORD), hash_password(OPERATOR_PASSWORD)


@pytest.fixture
def served(monkeypatch, hashes):
    """The lab password and the operator password are set."""
    monkeypatch.setenv("NUCLEI_PASSWORD_HASH", hashes[0])
    monkeypatch.setenv("NUCLEI_OPERATOR_PASSWORD_HASH", hashes[1])
    signin._failures().update(count=0)


def signed_in(name: str, password: str = LAB_PASSWORD, page: str = "train"):
    at = start_app()
    at.text_input(key="signin_name").set_value(name)
    at.text_input(key="signin_password").set_value(password)
    at.button[0].click().run()
    assert not at.exception and not at.error, texts(at.error)
    at.switch_page(app_page(page)).run()
    assert not at.exception, at.exception
    return at


def adas_work(tiny_model_file, registry):
    """Ada's dataset ``ada_cells`` and her uploaded model ``ada-model``."""
    labels = np.zeros((16, 16), np.int32)
    labels[2:9, 2:9] = 1
    save_training_image(
        "ada cells", "a", np.zeros((16, 16), np.uint8), labels, "fluorescence",
        root=User("Ada").datasets_root,
    )  # fmt: skip
    data = tiny_model_file.read_bytes()
    return catalogue.import_model(data, "mine.keras", registry, "ada-model", owner="Ada")


def model_options(at) -> str:
    return " | ".join(at.selectbox(key="models_choice").options)


def test_two_users_see_only_their_own_datasets_and_models(
    served, registry, active_model, tiny_model_file
):
    ada_model = adas_work(tiny_model_file, registry)
    assert ada_model.owner == "Ada" and "/users/ada-" in ada_model.model_path

    ada = signed_in("Ada")
    assert "ada_cells" in texts(ada.subheader)
    assert "ada-model" in model_options(ada) and "tiny" in model_options(ada)

    bob = signed_in("Bob")
    assert "ada_cells" not in texts(bob.subheader)
    assert "No corrected images yet" in texts(bob.info)
    assert "ada-model" not in model_options(bob)
    assert "ada-model" not in " | ".join(bob.sidebar.selectbox(key="sidebar_model").options)
    # the shared model is read-only to Bob, and only an operator changes the default
    assert bob.button(key="models_rename").disabled and bob.button(key="models_delete").disabled
    assert bob.button(key="models_default").disabled


def test_a_user_changes_their_own_model_not_the_shared_one(
    served, registry, active_model, tiny_model_file
):
    ada_model = adas_work(tiny_model_file, registry)
    ada = signed_in("ada")  # the same user whatever the case
    ada.selectbox(key="models_choice").set_value(ada_model.id).run()
    assert not ada.button(key="models_rename").disabled
    ada.text_input(key="models_new_name").set_value("ada-best")
    ada.button(key="models_rename").click().run()
    assert registry.get_run(ada_model.id).name == "ada-best"
    assert ada.button(key="models_default").disabled  # not an operator
    ada.selectbox(key="models_choice").set_value(active_model.id).run()
    assert ada.button(key="models_rename").disabled


def test_the_operator_sees_everyone_and_makes_a_model_the_default_for_all(
    served, registry, active_model, tiny_model_file
):
    ada_model = adas_work(tiny_model_file, registry)
    operator = signed_in("Olga", OPERATOR_PASSWORD)
    assert "Signed in as Olga (operator)" in texts(operator.sidebar.caption)
    assert "ada-model" in model_options(operator)
    operator.selectbox(key="models_choice").set_value(ada_model.id).run()
    assert not operator.button(key="models_default").disabled
    operator.button(key="models_default").click().run()
    assert registry.active_model().id == ada_model.id
    assert registry.get_run(ada_model.id).owner is None  # the default is shared by everyone
    assert "ada-model" in model_options(signed_in("Bob"))


def test_a_reload_keeps_the_session_model(registry, active_model, tiny_model_file, tmp_path):
    copy = tmp_path / "other.keras"
    copy.write_bytes(tiny_model_file.read_bytes())
    other = registry.register_model_card({"name": "other"}, copy, None)
    at = start_app()
    at.sidebar.selectbox(key="sidebar_model").set_value(other.id).run()
    assert at.query_params["model"] == str(other.id)
    reloaded = AppTest.from_file(APP, default_timeout=60)  # the same address, a new session
    reloaded.query_params["model"] = str(other.id)
    reloaded.run()
    assert not reloaded.exception, reloaded.exception
    assert "other" in texts(reloaded.sidebar.markdown)


def test_a_model_deleted_in_another_session_is_said_once(registry, active_model, tmp_path):
    copy = tmp_path / "data" / "models" / "gone.keras"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(Path(active_model.model_path).read_bytes())
    gone = registry.register_model_card({"name": "soon gone"}, copy, None)
    at = start_app()
    at.sidebar.selectbox(key="sidebar_model").set_value(gone.id).run()
    assert "soon gone" in texts(at.sidebar.markdown)
    catalogue.delete_model(registry, gone.id)  # another user, in another session
    at.run()
    assert "The model you chose, soon gone, was deleted" in texts(at.sidebar.warning)
    assert "tiny" in texts(at.sidebar.markdown)
    at.run()
    assert "was deleted" not in texts(at.sidebar.warning)  # said once
