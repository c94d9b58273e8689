"""Aliases (0013): ``NAME@ALIAS`` names the version of a model name that serves.

``chat@champion`` is how a deployer says which version of ``chat`` serves, as MLflow's and
W&B's registries do.

* One alias of a name points at one version of that name; setting it again moves it. Every
  set, move and removal is an event (modelstore.registry.events) written in the same
  transaction, so ``alias_history`` says what it pointed at, when, and who moved it.
* Two racing moves: each takes the event counter's row lock before it reads the alias, so
  they run one after the other -- both recorded, the later one wins, never a torn row.
* ``protected=True``: the alias moves, is removed or unprotected only with ``force=True``.
* A model an alias points at is not deleted, nor renamed away from its name: the call is
  refused, naming the alias (ModelStore.delete_model, update_model).
"""

from ..exceptions import NotFound, ValidationError
from ..shared.defaults import ALIAS_PATTERN as _ALIAS, ALIAS_RULE
from .checks import NAME_LIMIT, Moment
from .documents import type_name
from .events import utc_now
from .validate import check_version

__all__ = ['Aliases', 'check_alias', 'is_alias', 'split_reference', 'ALIAS_RULE']



def is_alias(text):
    """Is ``text`` what an alias may be called (so ``NAME@text`` names one)?"""
    return bool(_ALIAS.match(text)) and len(text) <= NAME_LIMIT


def split_reference(text):
    """(name, version or alias) of ``NAME@VERSION`` or ``NAME@ALIAS`` (split at the last
    ``@``), (name, None) of a bare ``NAME``; digits alone are refused as an id sent as text."""
    name, at, ref = text.rpartition('@')
    if at:
        return name, int(ref) if ref.isdigit() and ref.isascii() else ref
    if text.isdigit():
        raise ValidationError('model_id', 'must be an integer id or a reference (NAME, '
                              'NAME@VERSION, NAME@ALIAS), got the text %r: pass int(%r) for '
                              'the id, or use get_latest_model for a model named so'
                              % (text, text))
    return text, None


def check_alias(name, value):
    """An alias: text by ALIAS_RULE, at most NAME_LIMIT characters."""
    if not isinstance(value, str):
        raise ValidationError(name, 'must be a string, got %s' % type_name(value))
    if not _ALIAS.match(value) or len(value) > NAME_LIMIT:
        raise ValidationError(name, 'must be %s, at most %d characters; got %r'
                              % (ALIAS_RULE, NAME_LIMIT, value[:NAME_LIMIT + 1]))
    return value


def _flag(name, value):
    if not isinstance(value, bool):
        raise ValidationError(name, 'must be True or False, got %s' % type_name(value))
    return value


def _state(alias):
    """An alias row as an event's before/after."""
    return {'version': alias.version, 'model_id': alias.model_id,
            'protected': bool(alias.protected)}


class Aliases:
    """ModelStore's alias calls: made with the bound models, the store's ``Calls`` and its
    ``Events``."""

    def __init__(self, alias_model, model_model, calls, events, model_name):
        self.Alias = alias_model
        self.Model = model_model
        self._run = calls.run
        self.events = events
        self._model_name = model_name  # ModelStore's check of a model_name argument.
        A = alias_model  # resolve's statement, built once with sentinels for its two values.
        self._resolve = A.select(A.version).where(
            (A.model_name == '\x00name') & (A.alias == '\x00alias')).limit(1).sql()

    def set_alias(self, model_name, alias, version, protected=None, force=False):
        name = self._model_name(model_name)
        alias = check_alias('alias', alias)
        version = check_version('version', version)
        if protected is not None:
            _flag('protected', protected)
        _flag('force', force)
        A, M = self.Alias, self.Model

        def move():
            seq = self.events.lock()  # First: racing moves of the alias run one at a time.
            target = M.select(M.id, M.archived_at).where(
                (M.model_name == name) & (M.version == version)).get_or_none()
            if target is None:
                raise NotFound('no version %d of a model named %r' % (version, name))
            if target.archived_at is not None:  # It would serve; archive_model refuses too.
                raise ValidationError('version', 'version %d of %r is archived: restore_model '
                                      'it before an alias points at it' % (version, name))
            current = A.get_or_none((A.model_name == name) & (A.alias == alias))
            keep = bool(current.protected) if current is not None else False
            now_protected = keep if protected is None else protected
            after = {'version': version, 'model_id': target.id, 'protected': now_protected}
            if current is not None and _state(current) == after:
                return current, None  # Nothing changes: no event.
            if current is not None and current.protected and not force:
                raise ValidationError('alias', '%s@%s is protected: %s it with force=True' % (
                    name, alias, 'move' if current.version != version else 'unprotect'))
            values = dict(model_id=target.id, version=version, protected=now_protected,
                          updated_at=utc_now(), updated_by=self.events.actor)
            if current is None:
                A.insert(model_name=name, alias=alias, **values).execute()
            else:
                A.update(**values).where(A.id == current.id).execute()
            kind = 'alias.set' if current is None or current.version == version \
                else 'alias.moved'
            event = self.events.record(seq, kind, model_name=name, model_id=target.id,
                                       version=version, alias=alias,
                                       before=_state(current) if current else None,
                                       after=after)
            return A.get((A.model_name == name) & (A.alias == alias)), event
        row, event = self._run('set_alias', move, write=True)
        if event is not None:
            self.events.notify([event])
        return row

    def delete_alias(self, model_name, alias, force=False):
        name = self._model_name(model_name)
        alias = check_alias('alias', alias)
        _flag('force', force)
        A = self.Alias

        def remove():
            seq = self.events.lock()
            current = A.get_or_none((A.model_name == name) & (A.alias == alias))
            if current is None:
                raise NotFound('model %r has no alias %r' % (name, alias))
            if current.protected and not force:
                raise ValidationError('alias', '%s@%s is protected: remove it with force=True'
                                      % (name, alias))
            A.delete().where(A.id == current.id).execute()
            return self.events.record(seq, 'alias.removed', model_name=name,
                                      model_id=current.model_id, version=current.version,
                                      alias=alias, before=_state(current), after=None)
        event = self._run('delete_alias', remove, write=True)
        self.events.notify([event])

    def list_aliases(self, model_name):
        name = self._model_name(model_name)
        A = self.Alias
        return self._run('list_aliases', lambda: list(
            A.select().where(A.model_name == name).order_by(A.alias)))

    def resolve(self, model_name, alias):
        """The version ``NAME@ALIAS`` points at; NotFound naming the aliases there are."""
        A = self.Alias
        sql, params = self._resolve
        given = {'\x00name': A.model_name.db_value(model_name),  # (As peewee would send them.)
                 '\x00alias': A.alias.db_value(alias)}
        row = self._run('get_model', lambda: A._meta.database.execute_sql(
            sql, [given.get(param, param) for param in params]).fetchone())
        if row is None:
            names = [a.alias for a in self.list_aliases(model_name)]
            raise NotFound('model %r has no alias %r (%s)' % (
                model_name, alias, 'its aliases: %s' % ', '.join(names) if names
                else 'it has none'))
        return A.version.python_value(row[0])

    def history(self, model_name, alias, at=None):
        name = self._model_name(model_name)
        alias = check_alias('alias', alias)
        E = self.events.Event
        query = E.select().where((E.model_name == name) & (E.alias == alias) &
                                 E.kind.startswith('alias.'))
        if at is not None:
            query = query.where(E.at <= _utc('at', at))  # (aware: converted; naive: UTC)
        return self._run('alias_history', lambda: list(query.order_by(E.seq)))

    def refuse_if_held(self, model_id, what):
        """ValidationError naming the aliases that point at model ``model_id``, which the
        caller was going to ``what`` (delete, rename, archive); in its transaction."""
        holding = self.holding(model_id)
        if holding:
            raise ValidationError('model_id', 'model %d is what %s point%s at: move or remove '
                                  '%s first (set_alias, delete_alias); nothing was %sd'
                                  % (model_id, ', '.join(holding),
                                     '' if len(holding) > 1 else 's',
                                     'them' if len(holding) > 1 else 'it', what))

    def holding(self, model_id):
        """The aliases pointing at model ``model_id`` (in the caller's transaction)."""
        A = self.Alias
        return ['%s@%s' % row for row in A.select(A.model_name, A.alias).where(
            A.model_id == model_id).order_by(A.model_name, A.alias).tuples()]


_utc = Moment('utc')
