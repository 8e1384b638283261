"""``python -m orienteer`` runs the command-line interface."""

from orienteer.tui.cli.main import main

main()
