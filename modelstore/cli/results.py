"""What a command returns: the data of its answer and its exit code.

A command parses its arguments, calls the library and returns one of these; ``cli.render``
prints it, as text or (``--json``) as the object ``as_json()`` gives. Most hold the library's
own results (``Status``, ``Findings``, a run's result, an import plan) and add only what the
command line knows: the database as shown, the hints' options (``hint(verb, *words)``).
"""
from __future__ import annotations  # No typing at start-up (issue 30).

import datetime
import enum
from collections.abc import Callable, Iterator

from ..exceptions import ClientsAlive, ScriptError, one_line
from .output import ERROR, OK, PENDING

__all__ = ['columns', 'Status', 'History', 'ClientList', 'Check', 'Accepted', 'Run', 'Repaired',
           'Restored', 'NewScript', 'Generated', 'SchemaCheck', 'Lint', 'DoctorReport', 'Row',
           'Deleted', 'Changed', 'Imported', 'Listing', 'Failure']


def _plain(value):
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return value


def columns(row):
    """Every column of a stored row, by column name, as JSON values."""
    meta = type(row)._meta
    return {field.column_name: _plain(getattr(row, field.name))
            for field in meta.sorted_fields}


def _problems(records):
    return [problem for record in records for problem in record.problems()]


class _Result:
    """A command's result. Its fields are its class's annotations, in order (a base class's
    first), given to the constructor by position or by name; one without a default is required.
    A dataclass's constructor, without the per-class code generation that cost every command
    ~0.3 ms a result class at start-up (issue 30)."""
    exit_code = OK
    _fields = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        names = [name for klass in reversed(cls.__mro__)
                 for name in vars(klass).get('__annotations__', ())]
        cls._fields = tuple(dict.fromkeys(names))

    def __init__(self, *args, **kwargs):
        if len(args) > len(self._fields):
            raise TypeError('%s takes %d values, got %d'
                            % (type(self).__name__, len(self._fields), len(args)))
        values = dict(zip(self._fields, args))
        for name, value in kwargs.items():
            if name not in self._fields or name in values:
                raise TypeError('%s: unexpected or repeated value %r' % (type(self).__name__,
                                                                         name))
            values[name] = value
        for name in self._fields:
            if name in values:
                value = values[name]
            elif hasattr(type(self), name):
                value = getattr(type(self), name)
                value = value.make() if isinstance(value, _New) else value
            else:
                raise TypeError('%s: missing value %r' % (type(self).__name__, name))
            setattr(self, name, value)

    def __repr__(self):
        return '%s(%s)' % (type(self).__name__, ', '.join(
            '%s=%r' % (name, getattr(self, name)) for name in self._fields))


class _New:
    """A field's default made afresh for each result (a dataclass's ``default_factory``)."""

    def __init__(self, make):
        self.make = make


# -- the commands that read a database -------------------------------------------------------

class Status(_Result):
    """``status``: the engine's Status of ``database`` (shown masked)."""
    database: str
    exists: bool
    status: object
    failure_note: Callable  # An entry that failed partway -> what its history says.
    hint: Callable

    @property
    def exit_code(self):
        return OK if self.status.up_to_date and not self.status.changed else PENDING

    @property
    def damaged(self):
        return _problems(self.status.records)

    def as_json(self):
        status, adoption = self.status, self.status.adoption
        return {'database': self.database, 'exists': self.exists, 'applied': status.applied,
                'pending': status.pending, 'missing': status.missing, 'failed': status.failed,
                'changed': status.changed, 'history_table': status.history_table,
                'up_to_date': status.up_to_date, 'to_adopt': status.to_adopt,
                'adoption': adoption.as_dict() if adoption else None,
                'scripts': [e.as_dict() for e in status.entries]}


class History(_Result):
    """``history``: the history records; ``exists`` matters only when there are none."""
    database: str
    records: list
    exists: bool = True

    @property
    def damaged(self):
        return _problems(self.records)

    def as_json(self):
        return {'database': self.database, 'history': [r.as_dict() for r in self.records]}


class ClientList(_Result):
    """``clients``: the registered clients (modelstore.engine.clients), alive ones unless
    ``all``; ``table``: whether the database has the clients table at all; ``hint``: the
    command lines to suggest, with this invocation's --database and --migrations."""
    database: str
    clients: list
    table: bool
    all: bool
    hint: Callable

    def as_json(self):
        return {'database': self.database, 'table': self.table,
                'clients': [c.as_dict() for c in self.clients]}


class Check(_Result):
    """``check``: the Status and the drift; a problem of either is exit 1."""
    database: str
    status: object
    drift: object
    failure_note: Callable  # An entry that failed partway -> what its history says.
    hint: Callable

    @property
    def damaged(self):
        return _problems(self.status.records)

    @property
    def problems(self):
        status = self.status
        return (['pending: %s' % n for n in status.pending]
                + ['missing script file for applied %s' % n for n in status.missing]
                + ['changed since applied: %s' % n for n in status.changed]
                + ['failed partway: %s (%s); run %s' % (e.name, self.failure_note(e),
                                                        self.hint('repair'))
                   for e in status.entries if e.failed]
                + ['drift: %s' % line for line in self.drift.lines]
                + ['damaged history: %s' % line for line in self.damaged])

    @property
    def exit_code(self):
        return PENDING if self.problems else OK

    def as_json(self):
        status = self.status
        return {'database': self.database, 'ok': not self.problems, 'pending': status.pending,
                'missing': status.missing, 'changed': status.changed,
                'failed': status.failed, 'drift': self.drift.lines,
                'notes': self.drift.notes, 'applied': status.applied,
                'damaged_history': self.damaged}


class Accepted(_Result):
    database: str
    names: list

    def as_json(self):
        return {'database': self.database, 'accepted': self.names}


# -- the commands that change a database -----------------------------------------------------

class Run(_Result):
    """``migrate`` or ``rollback`` (``direction`` up or down): the run's result and the
    status after it. Each script was printed as it ran; this is the summary."""
    database: str
    direction: str
    dry_run: bool
    fake: bool
    result: object
    status: object
    phase: str | None = None  # migrate --phase
    hint: Callable | None = None

    def as_json(self):
        result, adoption = self.result, self.result.adoption
        return {'database': self.database, 'dry_run': self.dry_run,
                'direction': self.direction,
                'scripts': [r.as_dict() for r in result.runs], 'names': result.names,
                'ran': result.by_method('ran'), 'adopted': result.by_method('adopted'),
                'notes': adoption.notes if adoption else [],
                'warnings': adoption.warnings if adoption else [], 'backup': result.backup,
                'data_lost': result.losses,
                'applied': self.status.applied, 'pending': self.status.pending,
                'phase': self.phase, 'held_back': result.held_back}


class Repaired(_Result):
    """``repair``: (name, direction, action, steps) for each script it repaired."""
    database: str
    done: list
    hint: Callable

    def as_json(self):
        return {'database': self.database, 'repaired': [
            {'name': name, 'direction': direction, 'action': action,
             'steps': [step.as_dict() for step in steps]}
            for name, direction, action, steps in self.done]}


class Restored(_Result):
    database: str
    backup: str
    safety: str | None
    tables: object
    status: object
    migrate: str  # The command that applies what is pending.

    def as_json(self):
        return {'database': self.database, 'restored_from': self.backup,
                'backup_of_previous': self.safety, 'tables': sorted(self.tables),
                'applied': self.status.applied, 'pending': self.status.pending}


# -- new -------------------------------------------------------------------------------------

class NewScript(_Result):
    path: str

    def as_json(self):
        return {'ok': True, 'paths': [self.path]}


class Generated(_Result):
    """``new --auto``: the generator's result; ``nothing`` says why there is no script,
    ``where`` where it was replayed."""
    result: object
    dry_run: bool
    where: str
    nothing: str

    @property
    def exit_code(self):
        plan = self.result.plan
        return PENDING if plan.todos or plan.contract_pending else OK

    def as_json(self):
        result, plan = self.result, self.result.plan
        return {'ok': not (plan.todos or plan.contract_pending), 'changed': result.changed,
                'paths': result.paths, 'dry_run': self.dry_run,
                'phase': plan.phase if result.changed else None,
                'operations': plan.summary(), 'todos': plan.todos,
                'contract_pending': plan.contract_pending,
                'scripts': [{'name': name, 'text': text} for name, text in result.files]}


class SchemaCheck(_Result):
    """``new --auto --check``: the changes a script would hold (none: the directory has
    every script the models need)."""
    plan: object
    models: str
    directory: str
    nothing: str

    @property
    def exit_code(self):
        return PENDING if self.plan else OK

    def as_json(self):
        return {'ok': not self.plan, 'changed': bool(self.plan),
                'operations': self.plan.summary(), 'todos': self.plan.todos,
                'contract_pending': self.plan.contract_pending}


class Lint(_Result):
    """``lint``: the linter's report. Findings are exit 1; a script that did not load or
    replay (MS000) is exit 2: the scripts after it were not checked, so there is no verdict."""
    report: object

    @property
    def exit_code(self):
        findings = self.report.findings
        if any(f.rule == 'MS000' for f in findings):
            return ERROR
        return PENDING if findings else OK

    def as_json(self):
        return self.report.as_json()


# -- the registry's --------------------------------------------------------------------------

class DoctorReport(_Result):
    """``doctor``: the findings; ``final`` False for the report before the fixes (text only),
    ``fixes`` each fix done or left alone (its 'said' is its line of text)."""
    database: str
    found: object
    hint: Callable
    final: bool = True
    fixes: list = _New(list)

    @property
    def exit_code(self):
        return OK if self.found.clean else PENDING

    def as_json(self):
        if not self.final:
            return None
        return dict(self.found.as_dict(), database=self.database,
                    fixes=[{k: v for k, v in f.items() if k != 'said'} for f in self.fixes])


class Row(_Result):
    """``models show``, ``tasks show``: one stored row."""
    row: object

    def as_json(self):
        return [columns(self.row)]


class Deleted(_Result):
    model: object
    removed: object  # The directory removed, or None.
    files: bool

    def as_json(self):
        return [dict(columns(self.model), deleted=True, removed_directory=self.removed)]


class Changed(_Result):
    """A registry change with nothing to list (``models alias rm``): what was done."""
    text: str
    payload: dict

    def as_json(self):
        return dict(self.payload, ok=True)


class Imported(_Result):
    """``import modelforge``: the plan, and the ids made (None: a dry run)."""
    plan: object
    ids: list | None
    dry_run: bool

    def as_json(self):
        payload = self.plan.as_dict()
        for entry, model_id in zip(payload['import'], self.ids or ()):
            entry['id'] = model_id
        return dict(payload, source='modelforge', dry_run=self.dry_run)


class Listing(_Result):
    """``models list``, ``tasks list``: rows read as they are printed (``rows`` holds the
    registry open until it is spent or closed). ``more[0]`` is set once the rows are spent
    when there was one past ``limit``, the terminal's default page."""
    rows: Iterator
    what: str  # 'models' or 'tasks'
    jsonl: bool
    limit: int | None
    offset: int
    page: int
    more: list[bool] = _New(lambda: [False])


# -- an error ----------------------------------------------------------------------------------

class Failure(_Result):
    """A command that failed: ``text`` for stderr; with --json also an object on stdout."""
    exc: BaseException
    text: str
    code: int

    @property
    def exit_code(self):
        return self.code

    def as_json(self):
        exc = self.exc
        error = {'type': type(exc).__name__, 'message': one_line(exc), 'exit_code': self.code}
        for attribute in ('pending', 'command', 'problems', 'losses', 'names', 'unknown',
                          'blockers'):
            if hasattr(exc, attribute):
                error[attribute] = getattr(exc, attribute)
        if isinstance(exc, ScriptError):
            error['script'] = exc.name
        if isinstance(exc, ClientsAlive):  # Whom to wait for, for a deploy script.
            error['scripts'] = exc.scripts
            error['clients'] = [client.as_dict() for client in exc.clients]
        return {'ok': False, 'error': error}
