"""PostgreSQL at scale: a legacy table of ``rows`` models (10,000,000 in the full run) taken to
head by ``migrate`` -- the index builds, 0010's online numbering, the scripts after it -- then
the registry's reads against the SQL they send, with their plans, and the sizes that project
to 100M (docs/performance.md, "PostgreSQL at 10M models").

    PYTHONPATH=harness .venv/bin/python bench/run.py --only scale --database ADMIN_URL \
        [--scale-rows 10000000]

The rows are loaded as a legacy app left them (no version), by the server itself
(``generate_series``), into the table as 0004 leaves it -- before the index scripts, so that
their builds are measured too: 100,000 names of 100 versions each, 50 base models, 20 tasks,
one model in 7 on a custom base, a second apart.
"""
import time

import modelstore
from modelstore.engine import Engine
from modelstore.shared.database import open_database

LOAD = '''
INSERT INTO fine_tuned_models (model_name, base_model, task, description, creation_date,
                               model_path, is_custom_base_model)
SELECT 'm-' || (i %% 100000), 'base-' || (i %% 50), 'task-' || (i %% 20), 'row ' || i,
       to_char(timestamp '2025-01-01' + i * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS'),
       '/models/' || i, i %% 7 = 0
FROM generate_series(%s, %s) AS i'''
CHUNK = 1000000


def postgres_calls(cur):
    """(fetch, explain) on a psycopg2 cursor: a statement's rows through the plain driver (the
    floor a registry call is measured against), and its plan on one line."""
    def fetch(sql, params):
        cur.execute(sql, params)
        return cur.fetchall()

    def explain(sql, params):
        cur.execute('EXPLAIN (COSTS OFF) ' + sql, params)
        return ' | '.join(r[0].strip() for r in cur.fetchall())
    return fetch, explain


def _timed_migrate(url, target, fact, section, rows):
    """``migrate`` to ``target``; each script's time as a fact."""
    db = open_database(url, mode='migrate')
    marks = [time.perf_counter()]

    def on_script(run):
        now = time.perf_counter()
        fact(section, '%s on %s rows (migrate, one script)' % (run.name, format(rows, ',')),
             now - marks[-1], unit='s', note=run.steps[0].description if run.steps else '')
        marks.append(now)
    start = time.perf_counter()
    Engine(db).migrate(target, on_script=on_script)
    db.close()
    return time.perf_counter() - start


def bench_scale_postgres(new_pg, result, fact, paired_medians, rows, repeat):
    import psycopg2
    section = 'PostgreSQL at %s' % format(rows, ',')
    url = new_pg()
    db = open_database(url, mode='migrate')
    Engine(db).migrate('0004_task_cluster_columns')
    db.close()
    conn = psycopg2.connect(url)
    conn.autocommit = True
    cur = conn.cursor()
    start = time.perf_counter()
    for first in range(1, rows + 1, CHUNK):
        cur.execute(LOAD, (first, min(first + CHUNK - 1, rows)))
    cur.execute('VACUUM ANALYZE fine_tuned_models')
    fact(section, 'loading %s legacy rows (generate_series, in the table as 0004 leaves it), '
         'and VACUUM ANALYZE' % format(rows, ','), time.perf_counter() - start, unit='s')
    took = _timed_migrate(url, '0009_model_version_index', fact, section, rows)
    fact(section, 'migrate 0005-0009 (index builds, CONCURRENTLY)', took, unit='s')
    db = open_database(url, mode='migrate')
    start = time.perf_counter()
    run = Engine(db).migrate('0010_number_model_versions').runs[-1]
    took = time.perf_counter() - start
    db.close()
    fact(section, '0010 numbering %s rows online (nobody writing)' % format(rows, ','),
         '%.1f s (%s rows/s)' % (took, format(int(rows / took), ',')), unit='',
         note=run.steps[0].description)
    took = _timed_migrate(url, None, fact, section, rows)
    fact(section, 'migrate 0011 to head', took, unit='s')
    cur.execute('VACUUM ANALYZE')

    fetch, explain = postgres_calls(cur)
    with modelstore.connect(url) as store:
        store.set_alias('m-4242', 'champion', min(37, max(rows // 100000, 1)))
        calls = [
            ('list_models(base model), page of 50',
             lambda: store.list_models(base_model='base-7', limit=50)),
            ('list_models(task, custom flag, name prefix), page of 50',
             lambda: store.list_models(task='task-3', is_custom_base_model=False,
                                       name_prefix='m-43', limit=50)),
            ("list_models(a name's versions), page of 50",
             lambda: store.list_models(model_name='m-4242', limit=50)),
            ('the same as named tuples (rows=True)',
             lambda: store.list_models(model_name='m-4242', limit=50, rows=True)),
            ('count_models(base model)', lambda: store.count_models(base_model='base-7')),
            ('count_models()', lambda: store.count_models()),
            ('get_latest_model(name)', lambda: store.get_latest_model('m-4242')),
            ('get_model("name@alias")', lambda: store.get_model('m-4242@champion')),
        ]
        for label, call in calls:
            sent = []
            store.database.query_hooks.append(sent.append)
            call()
            store.database.query_hooks.remove(sent.append)
            last = sent[-1]
            times = paired_medians([call] + [
                (lambda e=e: fetch(e.sql, e.params)) for e in sent], repeat)
            result(section, '%s vs the SQL it sends (%d statement%s)' % (
                label, len(sent), '' if len(sent) == 1 else 's'), times[0], sum(times[1:]),
                None if label.startswith('count_models()') else 1.5,
                note='plan of the last: %s' % explain(last.sql, last.params))
    cur.execute("SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c JOIN pg_index i ON "
                "i.indexrelid = c.oid WHERE i.indrelid = 'fine_tuned_models'::regclass "
                "ORDER BY 2 DESC")
    indexes = cur.fetchall()
    cur.execute("SELECT pg_relation_size('fine_tuned_models'), "
                "pg_total_relation_size('fine_tuned_models')")
    heap, total = cur.fetchone()
    fact(section, 'fine_tuned_models on disk: the table / with its indexes and TOAST',
         '%.2f / %.2f GB' % (heap / 1e9, total / 1e9), unit='',
         note='; '.join('%s %.0f MB' % (name, size / 1e6) for name, size in indexes))
    conn.close()
