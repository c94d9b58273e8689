"""The commands that read a database (status, history, clients, check), and accept.

``accept`` records a reviewed checksum; each returns its result (cli.results) for cli.render
to print."""
from ..authoring import load_models
from ..engine import Clients, Drift, Engine, detect_drift, failure_note, invalid_index_lines
from ..exceptions import UsageError
from ..shared.database import open_database
from ..shared.tables import MODELS
from ..shared.urls import database_exists
from .output import plural
from .results import Accepted, Check, ClientList, History, Status
from .settings import database_url, hint

__all__ = ['cmd_status', 'cmd_history', 'cmd_clients', 'cmd_check', 'cmd_accept']


def _open(args, mode):
    url = database_url(args)
    return url, open_database(url, mode=mode)


def _hint(args):
    """The hints of this command line: with the options that chose its database, its scripts
    (modelstore.cli.settings)."""
    return lambda verb, *words: hint(args, verb, *words)


def _engine(args, database, shown, **options):
    return Engine(database, args.migrations, label=shown, hint=_hint(args), **options)


def cmd_status(args, out):
    url, database = _open(args, 'inspect')
    shown = url.masked
    status = _engine(args, database, shown).status(analyse=True)
    return Status(shown, database_exists(url), status, failure_note, _hint(args))


def cmd_history(args, out):
    url, database = _open(args, 'inspect')
    shown = url.masked
    records = _engine(args, database, shown).history.read()
    return History(shown, records, bool(records) or database_exists(url))


def cmd_clients(args, out):
    url, database = _open(args, 'inspect')
    clients = Clients(database)
    table = database_exists(url) and clients.exists()
    return ClientList(url.masked, clients.rows(all=args.all) if table else [], table, args.all,
                      _hint(args))


def cmd_check(args, out):
    url, database = _open(args, 'inspect')
    shown = url.masked
    status = _engine(args, database, shown).status(analyse=True)
    return Check(shown, status, _drift(args, database, status), failure_note, _hint(args))


def _drift(args, database, status):
    """Drift from what is applied. Up to date: the models against the schema. Behind: the
    models describe the schema after the pending scripts, so the live tables are compared
    with the states the scripts produce instead (the analysis migrate runs before adopting):
    a table that matches none is drift, the pending scripts are listed by themselves."""
    if status.pending:
        adoption = status.adoption
        tables = [m._meta.table_name for m in (load_models(args.models) if args.models
                                               else MODELS)]
        return Drift((list(adoption.problems) if adoption else [])
                     + invalid_index_lines(database, tables),
                     ['%s pending: the models are compared with the schema once they are '
                      'applied' % plural(len(status.pending), 'script')])
    models = load_models(args.models) if args.models else MODELS
    return detect_drift(database, models, hint=_hint(args))


def cmd_accept(args, out):
    if not args.names and not args.all:
        raise UsageError('accept needs the names of the scripts to accept, or --all')
    url, database = _open(args, 'migrate')
    shown = url.masked
    names = _engine(args, database, shown, lock_timeout=args.lock_timeout).accept(
        None if args.all else args.names)
    return Accepted(shown, names)
