"""What a command returns: the data of its answer and its exit code.

A command parses its arguments, calls the library and returns one of these; ``cli.render``
prints it, as text or (``--json``) as the object ``as_json()`` gives. Most hold the library's
own results (``Status``, ``Findings``, a run's result, an import plan) and add only what the
command line knows: the database as shown, the hints' options (``hint(verb, *words)``).
"""
import datetime
import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, List, Optional

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
    exit_code = OK


# -- the commands that read a database -------------------------------------------------------

@dataclass
class Status(_Result):
    """``status``: the engine's Status of ``database`` (shown masked)."""
    database: str
    exists: bool
    status: Any
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


@dataclass
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


@dataclass
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


@dataclass
class Check(_Result):
    """``check``: the Status and the drift; a problem of either is exit 1."""
    database: str
    status: Any
    drift: Any
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


@dataclass
class Accepted(_Result):
    database: str
    names: list

    def as_json(self):
        return {'database': self.database, 'accepted': self.names}


# -- the commands that change a database -----------------------------------------------------

@dataclass
class Run(_Result):
    """``migrate`` or ``rollback`` (``direction`` up or down): the run's result and the
    status after it. Each script was printed as it ran; this is the summary."""
    database: str
    direction: str
    dry_run: bool
    fake: bool
    result: Any
    status: Any
    phase: Optional[str] = None  # migrate --phase
    hint: Optional[Callable] = None

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


@dataclass
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


@dataclass
class Restored(_Result):
    database: str
    backup: str
    safety: Optional[str]
    tables: Any
    status: Any
    migrate: str  # The command that applies what is pending.

    def as_json(self):
        return {'database': self.database, 'restored_from': self.backup,
                'backup_of_previous': self.safety, 'tables': sorted(self.tables),
                'applied': self.status.applied, 'pending': self.status.pending}


# -- new -------------------------------------------------------------------------------------

@dataclass
class NewScript(_Result):
    path: str

    def as_json(self):
        return {'ok': True, 'paths': [self.path]}


@dataclass
class Generated(_Result):
    """``new --auto``: the generator's result; ``nothing`` says why there is no script,
    ``where`` where it was replayed."""
    result: Any
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


@dataclass
class SchemaCheck(_Result):
    """``new --auto --check``: the changes a script would hold (none: the directory has
    every script the models need)."""
    plan: Any
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


@dataclass
class Lint(_Result):
    """``lint``: the linter's report. Findings are exit 1; a script that did not load or
    replay (MS000) is exit 2: the scripts after it were not checked, so there is no verdict."""
    report: Any

    @property
    def exit_code(self):
        findings = self.report.findings
        if any(f.rule == 'MS000' for f in findings):
            return ERROR
        return PENDING if findings else OK

    def as_json(self):
        return self.report.as_json()


# -- the registry's --------------------------------------------------------------------------

@dataclass
class DoctorReport(_Result):
    """``doctor``: the findings; ``final`` False for the report before the fixes (text only),
    ``fixes`` each fix done or left alone (its 'said' is its line of text)."""
    database: str
    found: Any
    hint: Callable
    final: bool = True
    fixes: list = field(default_factory=list)

    @property
    def exit_code(self):
        return OK if self.found.clean else PENDING

    def as_json(self):
        if not self.final:
            return None
        return dict(self.found.as_dict(), database=self.database,
                    fixes=[{k: v for k, v in f.items() if k != 'said'} for f in self.fixes])


@dataclass
class Row(_Result):
    """``models show``, ``tasks show``: one stored row."""
    row: Any

    def as_json(self):
        return [columns(self.row)]


@dataclass
class Deleted(_Result):
    model: Any
    removed: Any  # The directory removed, or None.
    files: bool

    def as_json(self):
        return [dict(columns(self.model), deleted=True, removed_directory=self.removed)]


@dataclass
class Changed(_Result):
    """A registry change with nothing to list (``models alias rm``): what was done."""
    text: str
    payload: dict

    def as_json(self):
        return dict(self.payload, ok=True)


@dataclass
class Imported(_Result):
    """``import modelforge``: the plan, and the ids made (None: a dry run)."""
    plan: Any
    ids: Optional[list]
    dry_run: bool

    def as_json(self):
        payload = self.plan.as_dict()
        for entry, model_id in zip(payload['import'], self.ids or ()):
            entry['id'] = model_id
        return dict(payload, source='modelforge', dry_run=self.dry_run)


@dataclass
class Listing(_Result):
    """``models list``, ``tasks list``: rows read as they are printed (``rows`` holds the
    registry open until it is spent or closed). ``more[0]`` is set once the rows are spent
    when there was one past ``limit``, the terminal's default page."""
    rows: Iterator
    what: str  # 'models' or 'tasks'
    jsonl: bool
    limit: Optional[int]
    offset: int
    page: int
    more: List[bool] = field(default_factory=lambda: [False])


# -- an error ----------------------------------------------------------------------------------

@dataclass
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
