"""`python -m modelstore` is the `modelstore` command."""
import sys

from .cli import command

sys.exit(command())
