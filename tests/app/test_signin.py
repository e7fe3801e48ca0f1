"""The door of a served app (ui.signin): the lab password, no anonymous network server."""

from __future__ import annotations

import pytest
from streamlit import config as streamlit_config
from support import app_page, start_app

from nuclei_core.access.passwords import hash_password
from ui import signin

PASSWORD = "lab password 42"


@pytest.fixture(scope="module")
def password_hash():
    return hash_password(PASSWORD)


@pytest.fixture
def listening_on():
    """Set the address Streamlit listens on for one test (AppTest reads the global config)."""
    before = streamlit_config.get_option("server.address")
    yield lambda address: streamlit_config.set_option("server.address", address)
    streamlit_config.set_option("server.address", before)


def texts(elements) -> list[str]:
    return [str(element.value) for element in elements]


def test_with_a_password_every_page_waits_for_it(monkeypatch, password_hash):
    monkeypatch.setenv("NUCLEI_PASSWORD_HASH", password_hash)
    signin._failures().update(count=0)
    at = start_app()
    assert texts(at.title) == ["Nuclei segmentation"]
    assert not at.sidebar.subheader  # the model sidebar of the app is not drawn
    at.text_input(key="signin_password").set_value(PASSWORD)
    at.button[0].click().run()  # no name: refused before the password is checked
    assert texts(at.error) == ["Type your name: your datasets are kept under it."]
    at.text_input(key="signin_name").set_value("Ada")
    at.text_input(key="signin_password").set_value("not it")
    at.button[0].click().run()
    assert signin.WRONG_PASSWORD_TEXT in texts(at.error)
    assert "Segment an image" not in texts(at.title)
    at.text_input(key="signin_password").set_value(PASSWORD)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert "Model" in texts(at.sidebar.subheader)  # the app itself, with its sidebar
    assert "Signed in as Ada" in texts(at.sidebar.caption)
    at.button(key="signin_sign_out").click().run()
    assert texts(at.title) == ["Nuclei segmentation"] and not at.sidebar.subheader


def test_wrong_passwords_wait_longer_and_longer_for_the_whole_server(monkeypatch, password_hash):
    monkeypatch.setenv("NUCLEI_PASSWORD_HASH", password_hash)
    waits = []
    monkeypatch.setattr(signin, "_wait", waits.append)
    signin._failures().update(count=0)
    for _ in range(2):  # two browser sessions: the count is the server's
        at = start_app()
        for _ in range(2):
            at.text_input(key="signin_name").set_value("Eve")
            at.text_input(key="signin_password").set_value("guess")
            at.button[0].click().run()
    assert waits == [0.0, 0.0, 1.0, 2.0]


def test_a_network_server_without_sign_in_does_not_open(listening_on):
    listening_on("0.0.0.0")
    at = start_app()
    assert any("has no sign-in" in text for text in texts(at.error))
    assert "nuclei hash-password" in at.code[0].value
    assert not at.sidebar.subheader


def test_anonymous_on_purpose_opens_with_a_banner(monkeypatch, listening_on):
    listening_on("0.0.0.0")
    monkeypatch.setenv("NUCLEI_ALLOW_ANONYMOUS", "1")
    at = start_app()
    assert signin.ANONYMOUS_TEXT in texts(at.warning)
    assert "Model" in texts(at.sidebar.subheader)


def test_a_misconfigured_hash_is_said_and_nothing_opens(monkeypatch):
    monkeypatch.setenv("NUCLEI_PASSWORD_HASH", "my lab password")  # pasted by mistake
    at = start_app()
    assert any("misconfigured" in text for text in texts(at.error))
    assert all("my lab password" not in text for text in texts(at.error))
    assert not at.sidebar.subheader


def test_on_this_machine_only_the_app_opens_as_it_is():
    at = start_app()
    assert "Model" in texts(at.sidebar.subheader)
    assert signin.ANONYMOUS_TEXT not in texts(at.warning)
    assert all(button.key != "signin_sign_out" for button in at.button)


def test_a_served_app_reads_only_its_allowed_folders(
    monkeypatch, listening_on, tmp_path, active_model
):
    """Signed in on a network server, the folder page refuses /etc and a .. way out with one
    message; a folder inside imports/ is read."""
    listening_on("0.0.0.0")
    monkeypatch.setenv("NUCLEI_ALLOW_ANONYMOUS", "1")
    at = start_app(app_page("batch"))
    at.radio[0].set_value(at.radio[0].options[-1]).run()  # a folder on the server
    for text in ("/etc", "../../../etc", str(tmp_path)):
        at.text_input(key="batch_folder").set_value(text).run()
        assert any("this server reads only from" in shown for shown in texts(at.error)), text
    imports = tmp_path / "data" / "imports" / "plate"
    imports.mkdir(parents=True)
    at.text_input(key="batch_folder").set_value("plate").run()
    errors = texts(at.error)
    assert not any("reads only from" in shown for shown in errors)
    assert any("no PNG, JPEG or TIFF image" in shown for shown in errors)  # it looked inside
