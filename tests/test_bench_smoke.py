"""The benchmark suite runs (tiny sizes). It asserts no timing: targets are judged on the full run
(docs/performance.md); this only fails when the bench itself is broken."""
import os
import re
import sqlite3
import subprocess
import sys

import pytest

from conftest import ON_MYSQL, ON_POSTGRES, TEST_URL

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, 'bench', 'run.py')

pytestmark = pytest.mark.slow  # Runs every bench case in a subprocess.


def test_the_bench_runs_and_prints_its_table():
    argv = [sys.executable, BENCH, '--smoke'] + (['--database', TEST_URL] if ON_POSTGRES else [])
    argv += ['--mysql', TEST_URL] if ON_MYSQL else []  # (It makes throwaway databases there.)
    harness = os.path.join(os.path.dirname(BENCH), os.pardir, 'harness')
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=harness))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert '| section | comparison | modelstore | baseline | ratio | target | met |' in out
    # Tiny sizes judge no speed target: no miss is printed that the run cannot stand behind.
    # What must be 0 at any size is judged (and met): rows lost, rows left unnumbered.
    assert '**NO**' not in out and '| not judged |' in out
    judged = [line for line in out.splitlines() if line.endswith('| yes |')]
    assert judged and all(re.search(r'rows lost / errors|rows left unnumbered', line)
                          for line in judged), judged
    assert re.search(r'none judged \(smoke run: sizes too small\) but the \d+ of '
                     r'correctness: all met', out), out
    for section in ('migrate SQLite', 'writers sqlite', 'queries SQLite', 'connect SQLite',
                    'bulk SQLite', 'clients SQLite', 'generate SQLite',
                    'versions online sqlite') + (
                        ('migrate PostgreSQL', 'writers postgresql', 'queries PostgreSQL',
                         'clients PostgreSQL', 'versions online postgresql',
                         'PostgreSQL at 20,000')
                        if ON_POSTGRES else ()) + (
                        ('versions online mysql', 'writers mysql', 'queries MySQL')
                        if ON_MYSQL else ()):
        assert '| %s |' % section in out, section
    if ON_MYSQL:  # Issue 30's pages "on every backend": MySQL's too, models and rows.
        assert re.search(r'\| queries MySQL \| list_models\(base model\), page of 50, [\d,]+ '
                         r'models .* plan: t1: ', out), out
        assert '| queries MySQL | the same page as named tuples (rows=True) vs its SQL' in out
    # 0010 and its writers again on names with thousands of versions and names with a few.
    for backend in ('sqlite',) + (('postgresql',) if ON_POSTGRES else ()):
        assert '| versions online %s, a spread of names (16 of ' % backend in out, backend
    assert 'USING INDEX ix_fine_tuned_models_listing' in out  # The listing query's plan.
    # Where migrate's fixed cost goes, part by part (issue 30).
    for part in ('the adoption probe', 'the history table created', 'the foreign-key watch',
                 'reading the scripts and their checksums', "the scripts' own work",
                 'COMMIT', 'ALTER TABLE statements'):
        assert re.search(r'\| migrate SQLite \| add columns, [\d,]+ rows, part of the run: %s'
                         % re.escape(part), out), part
    # The lookups, each against the statements it sends.
    for lookup in ('get_latest_model(name), a name of 60 versions', 'get_model("name@version")',
                   'get_model("name@alias")', 'get_model(id)'):
        assert '| queries SQLite | %s vs the SQL it sends' % lookup in out, lookup
    # The registration's cost: the steady per-call row and the heartbeat, amortised.
    assert re.search(r'\| clients SQLite \| add_model with registration, one heartbeat per 30 s '
                     r'amortised .* writes per heartbeat', out), out
    # "versions online" times 0010's numbering (it once timed 0011, whose check cannot fail).
    assert re.search(r'\| versions online sqlite \| 0010 run with 8 writers every 0.1 s, and rows '
                     r'left unnumbered .* Changed \d+ rows in \d+ online batches; batches by '
                     r'pace: ', out), out
    assert '| versions online sqlite | 4 legacy writers (of 4, every 0.005 s)' in out
    # Both kinds of writers, each write timed whole; 0010 idle against the set-based floor.
    for kind in ('legacy', 'modelstore'):
        assert re.search(r'\| versions online sqlite \| 4 %s writers .* during 0010\'s batches'
                         % kind, out), out
    assert re.search(r'\| versions online sqlite \| 0010 on [\d,]+ idle rows, online .* vs the '
                     r'set-based floor', out), out
    assert '| versions online sqlite | the same with migrate --offline vs the floor' in out


def test_a_commands_peak_memory_is_its_own_not_the_benchs():
    """bench/rss.py: wait4's ru_maxrss counts what a child shares with its parent before its
    exec, so the bench's peak RSS rows reported the bench's own size (54 MB for a `migrate`
    that peaks at 37). The command now starts from a small probe."""
    sys.path.insert(0, os.path.dirname(BENCH))
    try:
        import rss
    finally:
        sys.path.pop(0)
    held = bytearray(300 * 1024 * 1024)
    held[::4096] = b'x' * len(held[::4096])  # Resident: 300 MB in this process.
    small, _, code, _ = rss.peak_rss([sys.executable, '-c', 'pass'])
    assert code == 0 and small < 100, small
    grown, _, code, _ = rss.peak_rss([sys.executable, '-c', 'x = bytearray(150 * 2 ** 20); '
                                      'x[::4096] = b"x" * len(x[::4096])'])
    assert code == 0 and 150 < grown < 250, grown
    assert rss.peak_rss([sys.executable, '-c', 'raise SystemExit(3)'])[2] == 3
    del held


def test_a_template_whose_spread_of_names_differs_from_spread_name_is_refused(tmp_path):
    """The bench's spread of names is written twice: in Python (spread_name, SQLite's template)
    and as SQL (PostgreSQL's template). same_spread holds them together: the PostgreSQL run
    checks its template with it, and a template off by one row is refused, naming the name."""
    harness = os.path.join(os.path.dirname(BENCH), os.pardir, 'harness')
    sys.path[:0] = [os.path.dirname(BENCH), harness]
    try:
        import run
    finally:
        del sys.path[:2]
    path = str(tmp_path / 'spread.db')
    rows = 400
    run.fill_sqlite(path, rows, run.spread_name)
    with sqlite3.connect(path) as conn:  # (Without the legacy file's own sample models.)
        conn.execute("DELETE FROM fine_tuned_models WHERE model_name NOT LIKE 'hot-%' AND "
                     "model_name NOT LIKE 'model-%'")
    conn.close()
    url = 'sqlite:///' + path
    run.same_spread(url, range(rows), rows)  # As built: the same.
    with pytest.raises(RuntimeError, match=r'2 names differ \(hot-0, hot-8\)'):
        run.same_spread(url, range(1, rows + 1), rows)  # Off by one: i = 0 out, 400 in.
