"""``python -m superres`` runs the user-facing command line (see ``superres --help``)."""

from superres.commands import main

if __name__ == "__main__":
    main()
