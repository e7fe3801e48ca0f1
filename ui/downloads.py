"""Download buttons whose files travel with the page, so a click works whatever reruns meanwhile.

``st.download_button`` keeps its file on the server and drops it two script runs after
the run that replaced it; a stopped run counts, so moving the threshold twice while a
download button is shown can leave it pointing at a deleted file (the click saves
nothing). These buttons (a Streamlit custom component, ``st.components.v2``) get their
bytes with the page, base64 in the component's data, and the browser saves them from a
``Blob``: a click never asks the server. The bytes are sent with every run, as
Streamlit's own buttons fetch their files with every run.
"""

from __future__ import annotations

import base64
from typing import NamedTuple

import streamlit as st

HTML = '<div class="downloads" role="group" aria-label="Downloads"></div>'

CSS = """
.downloads { display: flex; flex-wrap: wrap; gap: 0.5rem; }
.downloads button {
  font: inherit; font-size: 0.875rem; padding: 0.375rem 0.75rem; cursor: pointer;
  color: var(--st-text-color, inherit);
  background: var(--st-background-color, transparent);
  border: 1px solid var(--st-border-color, rgba(49, 51, 63, 0.2));
  border-radius: var(--st-button-radius, 0.5rem);
}
.downloads button:hover, .downloads button:focus-visible {
  border-color: var(--st-primary-color, #ff4b4b); color: var(--st-primary-color, #ff4b4b);
}
"""

JS = """
// One <button> per file; a click turns the file's base64 into a Blob and saves it.
export default function (component) {
  const { parentElement, data } = component;
  const group = parentElement.querySelector(".downloads");
  group.replaceChildren(...((data && data.files) || []).map(button));
}

function button(file) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = file.label;
  element.title = `Save ${file.name}`;
  element.addEventListener("click", () => save(file));
  return element;
}

function save(file) {
  const text = atob(file.base64);
  const bytes = new Uint8Array(text.length);
  for (let index = 0; index < text.length; index += 1) bytes[index] = text.charCodeAt(index);
  const url = URL.createObjectURL(new Blob([bytes], { type: file.mime }));
  const link = document.createElement("a");
  link.href = url;
  link.download = file.name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
"""

_component = st.components.v2.component("nuclei_downloads", html=HTML, css=CSS, js=JS)


class DownloadFile(NamedTuple):
    """One button: its label, the saved file's name and type, and its bytes."""

    label: str
    file_name: str
    mime: str
    content: bytes


def component_data(files: list[DownloadFile]) -> dict:
    """The component's data: each file's label, name, type and base64 bytes.

    Examples
    --------
    >>> component_data([DownloadFile("Table", "a.csv", "text/csv", b"label\\n1\\n")])
    {'files': [{'label': 'Table', 'name': 'a.csv', 'mime': 'text/csv', 'base64': 'bGFiZWwKMQo='}]}
    """
    return {
        "files": [
            {
                "label": file.label,
                "name": file.file_name,
                "mime": file.mime,
                "base64": base64.b64encode(file.content).decode("ascii"),
            }
            for file in files
        ]
    }


def download_buttons(files: list[DownloadFile], key: str) -> None:
    """Show one download button per file, in a row that wraps."""
    _component(key=key, data=component_data(files))
