"""``python -m cityheart`` runs the command line."""

from cityheart.cli import app

app()
