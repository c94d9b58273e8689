"""The ``check`` command: the schema's status, and drift between the models and the schema.

Apart from the other reading commands (``read_commands``) because it loads the models
(``--models``) through the authoring tools, which ``status`` and ``history`` never need."""
from ..authoring import load_models
from ..engine import Drift, detect_drift, failure_note, invalid_index_lines
from ..shared.tables import MODELS
from .output import plural
from .read_commands import engine_of, hints, opened
from .results import Check

__all__ = ['cmd_check']


def cmd_check(args, out):
    url, database = opened(args, 'inspect')
    shown = url.masked
    status = engine_of(args, database, shown).status(analyse=True)
    return Check(shown, status, _drift(args, database, status), failure_note, hints(args))


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
    return detect_drift(database, models, hint=hints(args))
