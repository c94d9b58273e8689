"""Adoption: which pending scripts' effects a database already holds.

A legacy file (ModelForge, the inference-autotuner) has modelstore's tables but no history.
Running the scripts on it would fail ("table already exists"); treating it as empty would lose
it. So before a run, for every table a pending script touches:

1. The scripts are run, in order, on an empty in-memory SQLite database (the *shadow*), and the
   table's shape is taken after each one. Those are the states the migrations know:
   absent, then one state after each script that changed the table.
2. The live table is compared with each state. Over the columns and indexes that appear in any
   state, the live table must have exactly those of the state, with compatible types (see
   modelstore.shared.shape), the same nullability and primary key, and the state's DEFAULTs.
   Columns and indexes that appear in no state were added by hand: they are kept and reported.
3. A pending script whose every table already holds its effect is *adopted*: recorded in history
   as ``adopted``, not run. One whose tables hold none of it is run. One in between (0001 on a
   file that has only one of its two tables) is run, and creates only what is missing.

A table that matches no state is not adopted. The run is refused before anything changes, with a
report of how the table differs from the nearest state. Tables no pending script touches are
never looked at; tables no script creates (``experiments``, ``parameter_presets``, ModelForge
v2's ``models``) are never touched.

Looser legacy variants that are safe are accepted by name (``LEGACY_NULLABLE``): ModelForge v1.1
added ``is_custom_base_model`` as a nullable ``BOOLEAN DEFAULT 0``.
"""
from __future__ import annotations  # No typing at start-up (issue 30).

import threading
from dataclasses import dataclass, field

from ..exceptions import ScriptError
from ..shared.shape import (LEGACY_NULLABLE, Shape, blocks_inserts, compatible, default_key,
                            snapshot)
from .history import TABLE as HISTORY_TABLE
from .shadow import replay, shadow_database

__all__ = ['Adoption', 'analyse', 'known_states']

ADOPT, RUN, PARTIAL = 'adopt', 'run', 'partial'

_cache = {}
_steps_cache = {}  # the same key -> (states, {table: its states' history})
_cache_lock = threading.Lock()


@dataclass
class Adoption:
    """The verdict for each pending script, and what was found along the way."""
    verdicts: dict[str, str] = field(default_factory=dict)  # name -> adopt | run | partial
    present: dict[str, list[str]] = field(default_factory=dict)  # name -> tables already done
    problems: list[str] = field(default_factory=list)  # non-empty: the run is refused
    notes: list[str] = field(default_factory=list)  # kept as they are, reported
    # Non-empty: the analysis could not run; every pending script runs instead (see analyse).
    warnings: list[str] = field(default_factory=list)

    def names(self, verdict):
        return [n for n, v in self.verdicts.items() if v == verdict]

    def as_dict(self):
        return {'adopt': self.names(ADOPT), 'run': self.names(RUN),
                'partial': {n: self.present[n] for n in self.names(PARTIAL)},
                'problems': list(self.problems), 'notes': list(self.notes),
                'warnings': list(self.warnings)}


def known_states(scripts):
    """``[{table: Shape}]``: every table's shape after each script, from the shadow run."""
    key = tuple((s.name, s.checksum) for s in scripts)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    for script in scripts:  # A script that does not load is reported as such, not rewrapped.
        script.load(('up',))
    states = []
    with shadow_database() as shadow:
        def take(script):
            states.append({t: snapshot(shadow, t) for t in shadow.get_tables()
                           if t != HISTORY_TABLE and not t.startswith('sqlite_')})
        try:
            replay(scripts, shadow, after_each=take)
        except ScriptError as exc:
            raise ScriptError(exc.name, 'cannot tell what this script changes: it fails on an '
                              'empty in-memory SQLite database (%s)' % _cause(exc)) from exc
    with _cache_lock:
        _cache[key] = states
    return states


def _cause(exc):
    cause = exc.__cause__
    return '%s: %s' % (type(cause).__name__, cause) if cause is not None else str(exc)


def _history(states, scripts, table):
    """[(script name or None, shape or None)]: the table's states, starting from absent."""
    out = [(None, None)]
    for script, state in zip(scripts, states):
        shape = state.get(table)
        previous = out[-1][1]
        if (shape is None) != (previous is None) or (shape is not None
                                                      and not shape.same_as(previous)):
            out.append((script.name, shape))
    return out


def _differences(table, expected, live, vocabulary, index_vocabulary):
    """How ``live`` differs from the state ``expected``, over the known columns and indexes,
    and how many differences that is (each missing column counts)."""
    missing = [name for name in expected.columns if name not in live.columns]
    if len(missing) == 1:
        lines = ['column %s.%s is missing' % (table, missing[0])]
    else:
        lines = ['%d columns are missing from %s: %s' % (len(missing), table,
                                                        ', '.join(missing))] if missing else []
    for name, want in expected.columns.items():
        if live.columns.get(name) is not None:
            lines += _column_differences(table, name, want, live.columns[name])
    lines += ['column %s.%s belongs to a different state' % (table, name)
              for name in sorted((live.columns.keys() & vocabulary) - expected.columns.keys())]
    lines += ['%s is missing' % _index(table, index)
              for index in sorted(expected.indexes - live.indexes)]
    lines += ['%s belongs to a different state' % _index(table, index)
              for index in sorted((live.indexes & index_vocabulary) - expected.indexes)]
    return lines, len(lines) + max(0, len(missing) - 1)


def _column_differences(table, name, want, have):
    """How a live column differs from the state's: its type, key, nullability and default."""
    where = '%s.%s' % (table, name)
    lines = [] if compatible(want.kind, have.kind) else [
        'column %s has type %s, expected %s' % (where, have.declared or 'none', want.declared)]
    if want.primary_key != have.primary_key:
        lines.append('column %s is %sthe primary key' % (where, 'not ' if want.primary_key
                                                         else ''))
    elif not want.primary_key and want.null != have.null:
        if want.null:
            lines.append('column %s is NOT NULL, expected nullable' % where)
        elif (table, name) not in LEGACY_NULLABLE:
            lines.append('column %s is nullable, expected NOT NULL' % where)
    if want.default is not None and default_key(want.default) != default_key(have.default):
        lines.append('column %s has default %s, expected %s' % (
            where, have.default if have.default is not None else 'none', want.default))
    return lines


def _index(table, index):
    cols, unique = index
    return '%sindex on %s(%s)' % ('unique ' if unique else '', table, ', '.join(cols))


def _extras(table, live, vocabulary, index_vocabulary, adoption):
    """Columns and indexes no state knows: kept and noted; a problem if one refuses inserts."""
    for name in sorted(live.columns.keys() - vocabulary):
        if blocks_inserts(live.columns[name]):
            adoption.problems.append(
                'column %s.%s (not part of modelstore\'s schema) is NOT NULL without a default: '
                'every row modelstore inserts would be refused' % (table, name))
        else:
            adoption.notes.append('column %s.%s is not part of modelstore\'s schema: kept as it '
                                  'is' % (table, name))
    adoption.notes.extend('%s is not part of modelstore\'s schema: kept as it is'
                          % _index(table, index)
                          for index in sorted(live.indexes - index_vocabulary))


def _table_progress(database, existing, table, steps, adoption):
    """How many of the table's scripts the live table already holds; None if unprovable.
    ``existing``: the database's tables, read once for the whole analysis."""
    if table not in existing:
        return 0
    live = snapshot(database, table)
    shapes = [shape for _, shape in steps[1:]]
    vocabulary = set().union(*(s.columns.keys() for s in shapes if s is not None))
    index_vocabulary = set().union(*(s.indexes for s in shapes if s is not None))

    def differences(shape):
        if shape is None:
            return ['table %s exists, but a script drops it' % table], 1
        return _differences(table, shape, live, vocabulary, index_vocabulary)
    # The states in order until the first that matches (most tables match an early one); every
    # state's differences only when none does, to name the nearest (issue 30: this was most of
    # an analysis's time).
    found, match = [], None
    for i, shape in enumerate(shapes):
        found.append(differences(shape))
        if not found[-1][0]:
            match = i
            break
    _extras(table, live, vocabulary, index_vocabulary, adoption)
    if match is not None:
        # A shape can recur: a column added by one script and dropped by a later one (a
        # rolling deploy's expand and contract) leaves the table as it was before both. The
        # earliest match is the one to believe: it runs those scripts, which is what the
        # history says is owed, where the latest would record them as adopted and skip them --
        # the contract script's drop, and whatever data it moves, never done.
        state = shapes[match]
        adoption.notes.extend(
            'column %s.%s is nullable, as the legacy app created it; modelstore always writes '
            'a value there' % (table, name) for name in sorted(state.columns)
            if (table, name) in LEGACY_NULLABLE and live.columns[name].null
            and not state.columns[name].null)
        return match + 1
    partway = _partway(table, shapes, live, vocabulary, index_vocabulary)
    if partway is not None:
        adoption.notes.append('table %s is partway through %s (some of its indexes are built, '
                              'as by a non-transactional run that died): it runs again'
                              % (table, steps[partway + 1][0]))
        return partway
    # Report against the nearest state (fewest differences; the later one on a tie).
    best = min(range(len(found)), key=lambda i: (found[i][1], -i))
    adoption.problems.append(
        'table %s matches none of the states the migrations produce; nearest is the state '
        'after %s:' % (table, steps[best + 1][0]))
    adoption.problems.extend('  ' + line for line in found[best][0])
    return None


def _partway(table, shapes, live, vocabulary, index_vocabulary):
    """The number of the table's scripts done when the live table stands between two states
    that differ only in indexes -- a script building several indexes outside a transaction
    (``atomic = False``, CONCURRENTLY) died after some: that script is not done, the ones
    before it are. None otherwise."""
    known = live.indexes & index_vocabulary
    for i in range(len(shapes) - 1, 0, -1):
        before, after = shapes[i - 1], shapes[i]
        if before is None or after is None or not before.indexes < known < after.indexes:
            continue
        if not Shape(before.columns, frozenset()).same_as(Shape(after.columns, frozenset())):
            continue
        lines, _ = _differences(table, Shape(after.columns, known), live, vocabulary,
                                index_vocabulary)
        if not lines:
            return i
    return None


def analyse(database, scripts, pending, tables=None):
    """An Adoption for the ``pending`` scripts (names) among ``scripts`` (all, in order);
    ``tables``: the database's tables, if the caller has just read them."""
    pending = [s for s in scripts if s.name in set(pending)]
    adoption = Adoption()
    if not pending:
        return adoption
    try:
        states = known_states(scripts)
    except ScriptError as exc:
        # Scripts written against tables they do not create (an app's existing database)
        # cannot be replayed on an empty one. Nothing can be proven, so nothing is adopted:
        # every pending script runs, as it would without adoption, and fails safely if its
        # effect is already there.
        adoption.warnings.append(
            'adoption analysis is off: %s: %s. Nothing already in the database can be '
            'recognised, so every pending script will run as written'
            % (exc.name, str(exc).split(': ', 1)[1]))
        adoption.verdicts = {s.name: RUN for s in pending}
        return adoption
    touched, progress = _progress(database, states, scripts, pending, adoption,
                                  None if tables is None else set(tables))
    if adoption.problems:
        return adoption
    for script in pending:
        present = [t for t in touched[script.name] if script.name in progress.get(t, ())]
        adoption.verdicts[script.name] = _verdict(len(present), len(touched[script.name]))
        if present:
            adoption.present[script.name] = present
    return adoption


def _steps(states, scripts):
    """{table: _history(...)} for every table of ``states``: read once per set of scripts
    (the shapes' comparisons were most of an analysis's time)."""
    key = tuple((s.name, s.checksum) for s in scripts)
    with _cache_lock:
        steps = _steps_cache.get(key)
    if steps is None or steps[0] is not states:
        steps = (states, {table: _history(states, scripts, table)
                          for table in sorted(set().union(*(s.keys() for s in states)))})
        with _cache_lock:
            _steps_cache[key] = steps
    return steps[1]


def _progress(database, states, scripts, pending, adoption, existing=None):
    """({script name: the tables it changes}, {table: the names of the scripts the live table
    holds}), the live tables looked at only where a pending script changes them.
    ``existing``: the database's tables, if they were just read."""
    progress, touched = {}, {s.name: [] for s in scripts}
    pending_names = {s.name for s in pending}
    existing = set(database.get_tables()) if existing is None else existing
    for table, steps in _steps(states, scripts).items():
        names = [name for name, _ in steps[1:]]
        for name in names:
            touched[name].append(table)
        if pending_names.isdisjoint(names):
            continue
        done = _table_progress(database, existing, table, steps, adoption)
        if done is not None:
            progress[table] = set(names[:done])
    return touched, progress


def _verdict(present, touched):
    """Nothing of it in the schema (or nothing to see there): run it; all of it: adopt it."""
    if not present:
        return RUN
    return ADOPT if present == touched else PARTIAL
