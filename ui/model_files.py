"""The Train page's model files: the downloads of the chosen model and what its package holds.

A model of this project downloads as its ``.keras`` file or as a BioImage Model Zoo
package made when clicked (:func:`nuclei_core.sharing.zoo_export.package_bytes`); the
expander lists what that package will hold, from the model's card, before anything is
built.  A package imported from elsewhere downloads as it came, and the expander says
where it came from (:mod:`nuclei_core.sharing.package_model` runs it).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from nuclei_core.network.runtime import PACKAGE_SUFFIX
from nuclei_core.registry import cards, catalogue
from nuclei_core.sharing import zoo_export
from ui import wording


def _output_channels(card: dict) -> int:
    """3 for a network with a distance map (the card's ``params.distance``), else 2."""
    return 3 if (card.get("params") or {}).get("distance") else 2


def origin_lines(card: dict) -> list[str]:
    """Where a package imported from elsewhere came from, one line each.

    Examples
    --------
    >>> card = {"licence": "MIT", "params": {"file_name": "cells.bioimageio.zip",
    ...         "weights": "onnx", "outputs": ["prob"], "authors": ["A. Lab"]}}
    >>> print(origin_lines(card)[0])  # the package's own words escaped for Markdown
    from the BioImage Model Zoo package cells\\.bioimageio\\.zip
    """
    params = card.get("params") or {}
    lines = [
        f"from the BioImage Model Zoo package {wording.plain(params.get('file_name', '?'))}",
        f"weights run here: {params.get('weights', '?')} (OpenVINO for ONNX, Keras safe mode)",
        "outputs: " + ", ".join(wording.plain(name) for name in params.get("outputs", [])),
        f"licence {wording.plain(card.get('licence', 'not stated'))}",
    ]
    if params.get("authors"):
        lines.append("authors: " + ", ".join(wording.plain(name) for name in params["authors"]))
    if card.get("description"):
        lines.append(wording.plain(card["description"]))
    lines.append("runs on every page; cannot be trained on, fine-tuned or exported again")
    return lines


def show_model_files(chosen, columns) -> None:
    """The chosen model's download buttons in ``columns`` (two) and, below, what its
    package holds (or, for an imported package, where it came from)."""
    path = Path(chosen.model_path)
    card = cards.read_card(path)
    name = catalogue.slug(chosen.name)
    imported = path.name.lower().endswith(PACKAGE_SUFFIX)
    columns[0].download_button(
        "Download the package" if imported else "Download .keras",
        lambda: path.read_bytes(),
        file_name=f"{name}{PACKAGE_SUFFIX if imported else '.keras'}",
        mime="application/zip",
        on_click="ignore",
        key="models_download",
    )
    if imported:
        with st.expander("Where this model came from"):
            st.markdown("\n".join(f"- {line}" for line in origin_lines(card)))
        return
    columns[1].download_button(
        "Download for Fiji, QuPath, napari",
        lambda: zoo_export.package_bytes(chosen.model_path),
        file_name=f"{name}{zoo_export.SUFFIX}",
        mime="application/zip",
        on_click="ignore",
        key="models_download_zoo",
        help="A BioImage Model Zoo package (spec 0.5), made when clicked; see below what it holds.",
    )
    with st.expander("What the Fiji, QuPath, napari package holds"):
        lines = zoo_export.package_contents(card, _output_channels(card))
        st.markdown("\n".join(f"- {line}" for line in lines))  # the engine's words and numbers
