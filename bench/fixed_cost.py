"""Where a ``migrate`` of column adds spends its time beyond the floor (issue 30: "find the ~4.5
ms: adoption probe, history reads, FK guard, checksums -- measure each").

Each part of the run is timed by wrapping the function that does it, over ``runs`` runs of
0002-0004 on fresh copies of a legacy file (0001 adopted), in-process as the "migrate SQLite"
rows time the whole; a part's figure is its mean per run. The wrappers cost ~1 us a call, so the
parts add up to a little more than the run they divide. What the statements themselves cost is
read the same way, from peewee's ``_execute_cursor``; the floor pays the ALTERs and the commit
too.
"""
import collections
import os
import shutil
import time

import peewee

from modelstore.dialects import sqlite as sqlite_dialect
from modelstore.engine import history, run, runner
from modelstore.shared.database import open_database

WHOLE, STATEMENTS, ALTERS = ('the whole run', 'statements (all of the run\'s SQL, but COMMIT)',
                             'ALTER TABLE statements')
OWN_WORK = 'the scripts\' own work (playhouse\'s operations and their SQL, their records)'

# (label, owner, function name): the parts, outermost first. A part's time includes what it
# calls, so "the scripts' own work" is what is left of the scripts' transactions once the
# history and the foreign-key watch inside them are taken out.
PARTS = (
    ('connect and close', None, None),
    ('the run lock (flock, BEGIN IMMEDIATE, pragmas; its release)', None, None),
    ('COMMIT (fsync; the floor pays it too)', peewee.Database, 'commit'),
    ('reading the scripts and their checksums', runner, 'discover'),
    ('the adoption probe (the live tables against the known states)', runner, 'analyse'),
    ('the history table created (a legacy file has none)', history.History, 'ensure'),
    ('the history rows (one per script)', history.History, 'record'),
    ('the foreign-key watch (before and after each script)', sqlite_dialect.ForeignKeyWatch,
     ('mark', 'check')),
    ('the scripts\' transactions (their savepoints, the history and the watch in them)',
     run.Transactional, 'attempt'),
)


def _wrap(owner, name, totals, label):
    original = getattr(owner, name)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - start
    setattr(owner, name, timed)
    return original


def fixed_cost_parts(template, target, workdir, runs):
    """{part: mean seconds per run} for ``migrate(target)`` on copies of ``template``, with
    OWN_WORK, WHOLE, STATEMENTS and ALTERS. The functions are wrapped only while this runs."""
    totals = collections.Counter()
    copy = os.path.join(workdir, 'parts.db')
    wrapped = []
    try:
        for label, owner, names in PARTS:
            if owner is None:
                continue
            for name in (names if isinstance(names, tuple) else (names,)):
                wrapped.append((owner, name, _wrap(owner, name, totals, label)))
        session = sqlite_dialect.SqliteRunSession
        for name in ('__enter__', '__exit__'):
            wrapped.append((session, name, _wrap(session, name, totals, PARTS[1][0])))
        statements = peewee.Database._execute_cursor

        def sent(self, sql, params=None):
            start = time.perf_counter()
            try:
                return statements(self, sql, params)
            finally:
                spent = time.perf_counter() - start
                totals[STATEMENTS] += spent
                if sql.startswith('ALTER TABLE'):
                    totals[ALTERS] += spent
        peewee.Database._execute_cursor = sent
        wrapped.append((peewee.Database, '_execute_cursor', statements))
        for _ in range(runs):
            for suffix in ('', '-wal', '-shm'):
                if os.path.exists(copy + suffix):
                    os.remove(copy + suffix)
            shutil.copy(template, copy)
            os.sync()
            start = time.perf_counter()
            database = open_database('sqlite:///' + copy, mode='migrate')
            opened = time.perf_counter()
            runner.Engine(database).migrate(target)
            migrated = time.perf_counter()
            database.close()
            end = time.perf_counter()
            totals['connect and close'] += (opened - start) + (end - migrated)
            totals[WHOLE] += end - start
    finally:
        for owner, name, original in reversed(wrapped):
            setattr(owner, name, original)
    # The run lock's exit holds the COMMIT: the lock's own part is without it.
    totals[PARTS[1][0]] -= totals[PARTS[2][0]]
    attempt = PARTS[-1][0]
    inside = sum(totals[label] for label, owner, _ in PARTS[5:8])
    parts = {label: totals[label] / runs for label, _, _ in PARTS}
    parts[OWN_WORK] = (totals[attempt] - inside) / runs
    parts.update((label, totals[label] / runs) for label in (WHOLE, STATEMENTS, ALTERS))
    return parts

