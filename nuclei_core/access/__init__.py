"""Who may use a served dashboard: the lab password and how the server is reached.

:mod:`.passwords` hashes and checks the shared lab password (scrypt, salted; the
hash is what the operator configures, never the password); :mod:`.serving` decides,
from the address Streamlit listens on and the configuration, whether the app opens
as it is (one person on their own machine), asks for the password or a single
sign-on, or refuses to run anonymously on a network. No Streamlit here: the app's
side is :mod:`ui.signin`.
"""
