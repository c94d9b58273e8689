"""`python -m modelstore` is the `modelstore` command."""
import sys

from .cli import main

sys.exit(main())
