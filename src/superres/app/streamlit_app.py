"""The script ``streamlit run`` executes for ``superres app``; its arguments follow ``--``."""

from __future__ import annotations

import sys

from superres.app.page import main

main(sys.argv[1:])
