"""The Streamlit side of the app: what app.py and the pages share, apart from the engine.

``nuclei_core`` does the work and imports no Streamlit; the pages lay out widgets.
In between, by concern:

=================  ==============================================================
``navigation``     deep links: a page opened before ``app.py`` ran goes through it
``state``          the cached registry and models, the Segment page's network
                   output, folder scores shared by all sessions
``messages``       engine errors and warnings, messages kept across a rerun, the
                   outcome of a training run
``labels``         what things are called on screen, one-line texts
``pictures``       pictures shrunk for the browser, side by side; the error legend
``charts``         per-epoch curves (Altair)
``uploads``        the file types the upload widgets accept
``images``         channel / plane pickers and the pixel-size field
``threshold``      what the threshold slider can change on this image
``batch``          the folder job (background thread) and its progress fragment
=================  ==============================================================
"""
