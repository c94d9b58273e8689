"""Number the models already stored (online), then let the database number every new one.

Every model gets the next version of its name, in creation (id) order: the rows of a legacy
table become 1, 2, 3... per model_name, continuing after any number already given.

This is a data migration over every row, so it runs *online* (modelstore.online): in short
batches of its own transactions, while pipelines keep writing. `migrate` sizes each batch to
about 10 ms on SQLite and sleeps twice as long after each, so a writer waits for SQLite's write
lock about one batch at most (bench/: "versions online"). A run killed at any instant is resumed
by the next `migrate` (this script stays `running` in the history until it finishes): each batch
numbers rows and advances the counters in one transaction, and a batch only numbers rows that
have no version yet, so no row is numbered twice or skipped.

* SQLite: writers are serialised and ids only grow (AUTOINCREMENT), so the batches walk the
  ids; rows inserted meanwhile are after the walk and numbered by the last batch.
* PostgreSQL: ids can commit out of order, so a row behind the walk may appear after it
  passed. A partial index of the unnumbered rows (built CONCURRENTLY, dropped at the end) lets
  the last batch find every one of them without reading the table.

The last batch runs with the table's writers held off (SQLite's write lock; PostgreSQL's
LOCK TABLE ... SHARE ROW EXCLUSIVE, waited for at most 20 ms at a time): it numbers what is left
and installs the triggers, so no row is inserted between "numbered" and "numbered by the
database". From then on the database numbers every row inserted without a version -- by
modelstore, by ModelForge's own 6- and 7-column INSERTs, by an older modelstore still running
during a rolling upgrade -- from model_version_counters, and renumbers a row renamed to another
model_name. A row inserted with a version keeps it, and the counter moves past it.

* MySQL and MariaDB: as PostgreSQL, ids can commit out of order; there is no partial index, so
  the last two reads of the unnumbered rows read the table. The last batch holds
  ``LOCK TABLES fine_tuned_models WRITE, model_version_counters WRITE`` (DDL commits there, so a
  transaction cannot hold writers off while the triggers are created); readers wait for it too.
  Two BEFORE triggers (INSERT, UPDATE) set NEW.version from the counters, as PostgreSQL's does;
  creating triggers needs the TRIGGER privilege (and, with binary logging on, SUPER or
  ``log_bin_trust_function_creators``).

down() removes the triggers and leaves the numbers (0008's down drops the column).
"""
from peewee import MySQLDatabase, PostgresqlDatabase

from modelstore.online import Batches

TABLE = 'fine_tuned_models'
COUNTERS = 'model_version_counters'
UNNUMBERED = 'fine_tuned_models_unnumbered'  # PostgreSQL, while this script runs

# SQLite: AFTER triggers (a SQLite trigger cannot change NEW). `numbered_sql` is the body that
# gives row NEW.id the next version of NEW.model_name.
_NEXT = '''
    INSERT INTO model_version_counters (model_name, last_version)
        SELECT NEW.model_name, 0 WHERE NOT EXISTS (
            SELECT 1 FROM model_version_counters WHERE model_name = NEW.model_name);
    UPDATE model_version_counters SET last_version = last_version + 1
        WHERE model_name = NEW.model_name;
    UPDATE fine_tuned_models SET version = (
        SELECT last_version FROM model_version_counters WHERE model_name = NEW.model_name)
        WHERE id = NEW.id;'''
_KEEP = '''
    INSERT INTO model_version_counters (model_name, last_version)
        SELECT NEW.model_name, NEW.version WHERE NOT EXISTS (
            SELECT 1 FROM model_version_counters WHERE model_name = NEW.model_name);
    UPDATE model_version_counters SET last_version = NEW.version
        WHERE model_name = NEW.model_name AND last_version < NEW.version;'''
SQLITE_TRIGGERS = {
    'fine_tuned_models_version_new': (
        'AFTER INSERT', 'NEW.version IS NULL', _NEXT),
    # Only for a version past the name's counter: modelstore's own INSERTs move the counter
    # first (firing for each of their rows cost ~10 us a row).
    'fine_tuned_models_version_given': (
        'AFTER INSERT', 'NEW.version > COALESCE((SELECT last_version FROM '
        'model_version_counters WHERE model_name = NEW.model_name), 0)', _KEEP),
    'fine_tuned_models_version_renamed': (
        'AFTER UPDATE OF model_name, version',
        'NEW.version IS NULL OR NEW.model_name IS NOT OLD.model_name', _NEXT),
    # (Not when a NULL version is set: that is fine_tuned_models_version_new's own UPDATE,
    # whose number came from the counter already; firing then cost 16 us a row.)
    'fine_tuned_models_version_set': (
        'AFTER UPDATE OF version',
        'NEW.version IS NOT NULL AND OLD.version IS NOT NULL '
        'AND NEW.model_name IS OLD.model_name', _KEEP),
}

# PostgreSQL: one BEFORE trigger sets NEW.version itself. The counter row's lock (the upsert)
# makes concurrent inserts of one name take turns until each commits: no duplicate, and a
# rolled-back insert gives its number back, so no gap either.
PG_FUNCTION = '''
CREATE OR REPLACE FUNCTION modelstore_model_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.version IS NULL
            OR (TG_OP = 'UPDATE' AND NEW.model_name IS DISTINCT FROM OLD.model_name) THEN
        INSERT INTO model_version_counters AS c (model_name, last_version)
            VALUES (NEW.model_name, 1)
            ON CONFLICT (model_name) DO UPDATE SET last_version = c.last_version + 1
            RETURNING c.last_version INTO NEW.version;
    ELSIF TG_OP = 'INSERT' OR NEW.version IS DISTINCT FROM OLD.version THEN
        INSERT INTO model_version_counters AS c (model_name, last_version)
            VALUES (NEW.model_name, NEW.version)
            ON CONFLICT (model_name) DO UPDATE
            SET last_version = GREATEST(c.last_version, EXCLUDED.last_version);
    END IF;
    RETURN NEW;
END $$'''
PG_TRIGGER = 'fine_tuned_models_version'

# MySQL/MariaDB: BEFORE triggers, as PostgreSQL's function (the counter row's lock orders
# concurrent inserts of one name). No trigger fires only for some columns there: the UPDATE one
# looks at what changed.
_MY_NEXT = """
        INSERT INTO model_version_counters (model_name, last_version)
            VALUES (NEW.model_name, 1)
            ON DUPLICATE KEY UPDATE last_version = last_version + 1;
        SET NEW.version = (SELECT last_version FROM model_version_counters
                           WHERE model_name = NEW.model_name);"""
_MY_KEEP = """
        INSERT INTO model_version_counters (model_name, last_version)
            VALUES (NEW.model_name, NEW.version)
            ON DUPLICATE KEY UPDATE last_version = GREATEST(last_version, NEW.version);"""
MYSQL_TRIGGERS = {
    'fine_tuned_models_version_insert': (
        'BEFORE INSERT', 'IF NEW.version IS NULL THEN%s\n    ELSE%s\n    END IF;'
        % (_MY_NEXT, _MY_KEEP)),
    'fine_tuned_models_version_update': (
        'BEFORE UPDATE', 'IF NEW.version IS NULL OR NOT (NEW.model_name <=> OLD.model_name) '
        'THEN%s\n    ELSEIF NOT (NEW.version <=> OLD.version) THEN%s\n    END IF;'
        % (_MY_NEXT, _MY_KEEP)),
}


def up(migrator, db):
    online(db, Batches(db))


def online(db, batches):
    postgres = isinstance(db, PostgresqlDatabase)
    mysql = isinstance(db, MySQLDatabase)
    if postgres:
        _index_unnumbered(db)
    batches.expect(_unnumbered(db, postgres))
    after = 0
    while True:
        with batches.batch() as batch:
            size = batch.size
            rows = db.execute_sql('SELECT id, model_name, version FROM fine_tuned_models '
                                  'WHERE id > %s ORDER BY id LIMIT %s' % ((db.param,) * 2),
                                  (after, size)).fetchall()
            batch.done(_number(db, [(id_, name) for id_, name, version in rows
                                    if version is None]))
        if len(rows) < size:
            break
        after = rows[-1][0]
    if mysql:  # Behind the walk (a read of the table, without the lock), then under it.
        with batches.batch() as batch:
            batch.done(_number(db, _unnumbered_rows(db)))
        with batches.final(TABLE, COUNTERS) as batch:
            batch.done(_number(db, _unnumbered_rows(db)))
            _install(db, 'mysql')
        return
    if postgres:
        # The statistics still say every row is unnumbered, so the planner would read the
        # whole table for `version IS NULL` -- 0.3 s at 1M rows under the lock below, with
        # every writer waiting. ANALYZE (which blocks no writer) tells it they are few.
        db.execute_sql('ANALYZE fine_tuned_models')
        # The rows behind the walk, found through the index of unnumbered rows, without the
        # table lock. Reading it also marks its entries of rows numbered since as dead, so the
        # same read under the lock below is short.
        with batches.batch() as batch:
            batch.done(_number(db, _unnumbered_rows(db)))
    with batches.final(TABLE) as batch:
        if postgres:  # Anywhere: behind the walk too (see the docstring).
            db.execute_sql('SET LOCAL enable_seqscan = off')  # The index, whatever the stats.
            left = _unnumbered_rows(db)
        else:
            left = db.execute_sql('SELECT id, model_name FROM fine_tuned_models '
                                  'WHERE id > ? AND version IS NULL ORDER BY id',
                                  (after,)).fetchall()
        batch.done(_number(db, left))
        _install(db, 'postgresql' if postgres else 'sqlite')
        if postgres:
            db.execute_sql('DROP INDEX IF EXISTS "%s"' % UNNUMBERED)


def down(migrator, db):
    if isinstance(db, MySQLDatabase):
        for name in MYSQL_TRIGGERS:
            db.execute_sql('DROP TRIGGER IF EXISTS `%s`' % name)
    elif isinstance(db, PostgresqlDatabase):
        db.execute_sql('DROP TRIGGER IF EXISTS "%s" ON "%s"' % (PG_TRIGGER, TABLE))
        db.execute_sql('DROP FUNCTION IF EXISTS modelstore_model_version()')
        db.execute_sql('DROP INDEX IF EXISTS "%s"' % UNNUMBERED)
    else:
        for name in SQLITE_TRIGGERS:
            db.execute_sql('DROP TRIGGER IF EXISTS "%s"' % name)


def _index_unnumbered(db):
    how = '' if db.in_transaction() else 'CONCURRENTLY '
    if how:  # A build that died leaves an INVALID index: build it again.
        invalid = db.execute_sql(
            'SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid '
            'WHERE c.relname = %s AND NOT i.indisvalid', (UNNUMBERED,)).fetchone()
        if invalid:
            db.execute_sql('DROP INDEX CONCURRENTLY IF EXISTS "%s"' % UNNUMBERED)
    db.execute_sql('CREATE INDEX %sIF NOT EXISTS "%s" ON "%s" (id) WHERE version IS NULL'
                   % (how, UNNUMBERED, TABLE))


def _unnumbered_rows(db):
    return db.execute_sql('SELECT id, model_name FROM fine_tuned_models WHERE version IS NULL '
                          'ORDER BY id').fetchall()


def _unnumbered(db, postgres):
    """Rows without a version: the progress line's total. Read from indexes on SQLite (a
    COUNT with `version IS NULL` would read the whole table)."""
    if postgres:
        sql = 'SELECT count(*) FROM fine_tuned_models WHERE version IS NULL'
    else:
        sql = ('SELECT (SELECT count(*) FROM fine_tuned_models) - (SELECT count(*) FROM '
               'fine_tuned_models WHERE version IS NOT NULL)')
    return db.execute_sql(sql).fetchone()[0]


def _number(db, rows):
    """Give each (id, model_name) of ``rows`` (in id order) the next version of its name, and
    move the names' counters on; returns how many rows."""
    if not rows:
        return 0
    p = db.param
    names = sorted({name for _, name in rows})
    last = {}
    for i in range(0, len(names), 500):
        # Always 500 names (the last repeated): one statement, where an IN list of each length
        # would fill the driver's statement cache with large prepared statements (+10 MB RSS).
        chunk = names[i:i + 500]
        chunk += chunk[-1:] * (500 - len(chunk))
        last.update(db.execute_sql(
            'SELECT model_name, last_version FROM model_version_counters '
            'WHERE model_name IN (%s)' % ', '.join([p] * len(chunk)), chunk).fetchall())
    numbered = []
    for id_, name in rows:
        last[name] = last.get(name, 0) + 1
        numbered.append((last[name], id_))
    counters = [(name, last[name]) for name in names]
    upsert = ('INSERT INTO model_version_counters (model_name, last_version) VALUES %s '
              'ON CONFLICT (model_name) DO UPDATE SET last_version = excluded.last_version')
    if isinstance(db, MySQLDatabase):  # One statement each, as on PostgreSQL.
        db.execute_sql('UPDATE fine_tuned_models AS f JOIN (%s) AS v ON f.id = v.id '
                       'SET f.version = v.version'
                       % ' UNION ALL '.join(['SELECT %s AS version, %s AS id']
                                            + ['SELECT %s, %s'] * (len(numbered) - 1)),
                       [value for pair in numbered for value in pair])
        db.execute_sql('INSERT INTO model_version_counters (model_name, last_version) VALUES %s '
                       'ON DUPLICATE KEY UPDATE last_version = VALUES(last_version)'
                       % ', '.join(['(%s, %s)'] * len(counters)),
                       [value for pair in counters for value in pair])
    elif isinstance(db, PostgresqlDatabase):  # One statement each: a round trip per row is slow.
        db.execute_sql('UPDATE fine_tuned_models AS f SET version = v.version FROM (VALUES %s) '
                       'AS v (version, id) WHERE f.id = v.id'
                       % ', '.join(['(%s, %s)'] * len(numbered)),
                       [value for pair in numbered for value in pair])
        db.execute_sql(upsert % ', '.join(['(%s, %s)'] * len(counters)),
                       [value for pair in counters for value in pair])
    else:
        cursor = db.cursor()
        cursor.executemany('UPDATE fine_tuned_models SET version = ? WHERE id = ?', numbered)
        cursor.executemany(upsert % '(?, ?)', counters)
    return len(rows)


def _install(db, backend):
    """The triggers that number every row inserted from now on (idempotent)."""
    if backend == 'mysql':
        for name, (event, body) in MYSQL_TRIGGERS.items():
            db.execute_sql('DROP TRIGGER IF EXISTS `%s`' % name)
            db.execute_sql('CREATE TRIGGER `%s` %s ON `%s` FOR EACH ROW BEGIN\n    %s\nEND'
                           % (name, event, TABLE, body))
        return
    if backend == 'postgresql':
        db.execute_sql(PG_FUNCTION)
        db.execute_sql('DROP TRIGGER IF EXISTS "%s" ON "%s"' % (PG_TRIGGER, TABLE))
        db.execute_sql('CREATE TRIGGER "%s" BEFORE INSERT OR UPDATE OF model_name, version '
                       'ON "%s" FOR EACH ROW EXECUTE FUNCTION modelstore_model_version()'
                       % (PG_TRIGGER, TABLE))
        return
    for name, (event, when, body) in SQLITE_TRIGGERS.items():
        db.execute_sql('CREATE TRIGGER IF NOT EXISTS "%s" %s ON "%s" FOR EACH ROW WHEN %s '
                       'BEGIN%s\nEND' % (name, event, TABLE, when, body))
