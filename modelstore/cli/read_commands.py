"""The commands that read a database (status, history, clients), and accept.

``accept`` records a reviewed checksum; each returns its result (cli.results) for cli.render
to print. ``check`` is ``check_command``'s: it loads the models and the authoring tools, which
these do not need. ``opened``, ``engine_of`` and ``hints`` are shared with it."""
from .. import engine
from ..engine import Engine, failure_note
from ..exceptions import UsageError
from ..shared.database import open_database
from ..shared.urls import database_exists
from .results import Accepted, ClientList, History, Status
from .settings import database_url, hint

__all__ = ['cmd_status', 'cmd_history', 'cmd_clients', 'cmd_accept', 'opened', 'engine_of',
           'hints']


def opened(args, mode):
    url = database_url(args)
    return url, open_database(url, mode=mode)


def hints(args):
    """The hints of this command line: with the options that chose its database, its scripts
    (modelstore.cli.settings)."""
    return lambda verb, *words: hint(args, verb, *words)


def engine_of(args, database, shown, **options):
    return Engine(database, args.migrations, label=shown, hint=hints(args), **options)


def cmd_status(args, out):
    url, database = opened(args, 'inspect')
    shown = url.masked
    status = engine_of(args, database, shown).status(analyse=True)
    return Status(shown, database_exists(url), status, failure_note, hints(args))


def cmd_history(args, out):
    url, database = opened(args, 'inspect')
    shown = url.masked
    records = engine_of(args, database, shown).history.read()
    return History(shown, records, bool(records) or database_exists(url))


def cmd_clients(args, out):
    url, database = opened(args, 'inspect')
    clients = engine.Clients(database)  # Loaded here, not for status and history (issue 30).
    table = database_exists(url) and clients.exists()
    return ClientList(url.masked, clients.rows(all=args.all) if table else [], table, args.all,
                      hints(args))


def cmd_accept(args, out):
    if not args.names and not args.all:
        raise UsageError('accept needs the names of the scripts to accept, or --all')
    url, database = opened(args, 'migrate')
    shown = url.masked
    names = engine_of(args, database, shown, lock_timeout=args.lock_timeout).accept(
        None if args.all else args.names)
    return Accepted(shown, names)
