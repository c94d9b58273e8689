"""What a database's history and the script files say together.

One Entry per script, and the Status of the whole (applied, pending, missing, changed, to
adopt)."""
from __future__ import annotations  # No typing at start-up (issue 30).

import re
from dataclasses import dataclass

from .adopt import ADOPT, Adoption
from .history import FAILED, RUNNING, TABLE as HISTORY_TABLE, Record, is_log
from .scripts import CONTRACT, EXPAND, Script

__all__ = ['Entry', 'Status', 'OWNED_TABLES', 'schema_version', 'script_number']

OWNED_TABLES = frozenset({'fine_tuned_models', 'tasks'})


def schema_version(status):
    """What a backup's name says about the schema: last applied number, legacy, or empty."""
    if status.applied:
        match = re.match(r'\d+', status.applied[-1])
        return match.group() if match else re.sub(r'[^\w-]', '_', status.applied[-1])
    return 'legacy' if status.data_tables else 'empty'





def script_number(name):
    match = re.match(r'\d+', name)
    return int(match.group()) if match else -1


@dataclass
class Entry:
    """A script file, its history record, or both; ``plan`` says what migrate would do."""
    name: str
    script: Script | None
    record: Record | None
    plan: str | None = None  # pending only, when analysed: adopt | run | partial

    @property
    def interrupted(self):
        """A non-transactional script whose run died: history says ``running`` (and it keeps
        no operations log: it runs again, or is adopted)."""
        return self.record is not None and self.record.method == RUNNING and not self.failed

    @property
    def failed(self):
        """MySQL: the script failed partway, or its run died with its log saying how far it
        got (modelstore.engine.nontx); ``modelstore repair`` deals with it."""
        record = self.record
        return record is not None and (record.method == FAILED or (
            record.method == RUNNING and is_log(record.operations)))

    @property
    def state(self):
        if self.failed:
            return 'failed'
        if self.record is None or (self.interrupted and self.script is not None):
            return 'pending'  # An interrupted script runs again (or is adopted).
        return 'applied' if self.script is not None else 'missing'

    @property
    def phase(self):
        """expand or contract: the script's, else what the history recorded (a script of a
        newer release); None for a newer script applied before phases were recorded."""
        if self.script is not None:
            return self.script.phase
        return self.record.phase if self.record is not None else None

    @property
    def changed(self):
        """True when the file differs from the text that was applied."""
        return bool(self.script and self.record and self.record.checksum
                    and not self.script.matches(self.record.checksum))

    def as_dict(self):
        out = {'name': self.name, 'state': self.state, 'phase': self.phase,
               'changed': self.changed,
               'checksum': self.script.checksum if self.script else None}
        if self.record is not None:
            out['history'] = self.record.as_dict()
        if self.plan is not None:
            out['plan'] = self.plan
        return out


@dataclass
class Status:
    entries: list[Entry]
    history_table: bool
    tables: frozenset
    adoption: Adoption | None = None  # set by status(analyse=True)

    def _names(self, test):
        return [e.name for e in self.entries if test(e)]

    @property
    def applied(self):
        return self._names(lambda e: e.state not in ('pending', 'failed'))

    @property
    def failed(self):
        """MySQL: scripts that failed (or whose run died) partway; see modelstore.engine.nontx."""
        return self._names(lambda e: e.state == 'failed')

    @property
    def pending(self):
        return self._names(lambda e: e.state == 'pending')

    @property
    def missing(self):
        return self._names(lambda e: e.state == 'missing')

    @property
    def newer_contract(self):
        """Scripts of a newer release, applied here, that are not known to be expand scripts:
        code without them cannot know what the schema now refuses."""
        return self._names(lambda e: e.state == 'missing' and e.phase != EXPAND)

    @property
    def newer_expand_only(self):
        """A newer release applied scripts here, all of them expand: this code keeps working
        (modelstore.registry.gate)."""
        return bool(self.missing) and not self.newer_contract and not self.pending \
            and not self.failed

    @property
    def held_back(self):
        """The pending scripts when every one of them is a contract script, else []: code that
        knows them may work on the schema before them (a contract script that only removes what
        that code no longer uses), so a rolling deploy's new release connects before its
        contract step if its models' columns are there (modelstore.registry.gate,
        docs/rolling-upgrades.md)."""
        pending = [e for e in self.entries if e.state == 'pending']
        if self.failed or self.missing or not all(e.phase == CONTRACT for e in pending):
            return []
        return [e.name for e in pending]

    @property
    def changed(self):
        return self._names(lambda e: e.changed)

    @property
    def records(self):
        """The history records, in script order."""
        return [e.record for e in self.entries if e.record is not None]

    @property
    def up_to_date(self):
        return not self.pending and not self.missing and not self.failed

    @property
    def fresh(self):
        """Nothing of modelstore's here yet: no history and none of its tables."""
        return not self.applied and not (self.tables & OWNED_TABLES)

    @property
    def empty(self):
        """No tables at all but the history's: nothing of anyone's is here yet."""
        return not self.data_tables

    @property
    def data_tables(self):
        """Tables other than the history table and SQLite's own."""
        return frozenset(t for t in self.tables
                         if t != HISTORY_TABLE and not t.startswith('sqlite_'))

    @property
    def to_adopt(self):
        return self._names(lambda e: e.state == 'pending' and e.plan == ADOPT)
