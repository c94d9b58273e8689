"""``modelstore lint``: the migration linter over a scripts directory; returns its result.

The scripts replay on SQLite in memory, and on a throwaway database of each ``--database``
server given (or of the configured database, when that is a server). See
modelstore.authoring.linter."""
from ..authoring import lint
from ..shared.urls import parse_url
from .results import Lint

__all__ = ['cmd_lint']


def cmd_lint(args, out):
    given = args.database if isinstance(args.database, list) else [args.database]
    urls = [parse_url(url) for url in given]
    return Lint(lint(args.migrations, urls, args.released))
