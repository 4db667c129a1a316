"""The web app (``superres app``): upload an image, compare bicubic with a trained model, download.

``core`` holds everything the page does with pixels as plain functions (no Streamlit), ``page``
lays out the Streamlit page, ``streamlit_app.py`` is the script ``streamlit run`` executes.
"""

from __future__ import annotations

from pathlib import Path

SCRIPT = Path(__file__).with_name("streamlit_app.py")
