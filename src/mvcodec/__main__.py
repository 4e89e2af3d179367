"""``python -m mvcodec`` runs the command-line interface."""

from mvcodec.cli.main import entry_point

entry_point()
