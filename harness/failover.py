"""Failover: writers carry on through a SIGKILLed primary and a promoted standby, losing nothing.

Each trial starts two PostgreSQL clusters on 127.0.0.1 (scripts/postgres.sh): a primary and a
streaming-replication standby that the primary waits for at every commit
(``synchronous_standby_names``). The registry URL names both, the standby first:

    postgresql://u:p@127.0.0.1:STANDBY,127.0.0.1:PRIMARY/modelstore?target_session_attrs=read-write

``modelstore migrate`` and ``check`` run on it (so they must find the primary). Then WRITERS
processes call ``add_model`` in a loop, each on one ModelStore for the whole trial, logging
every call's outcome. After a random 1-3 s the primary and all its processes get SIGKILL; after
``--detect`` seconds (a failover manager's detection time) the standby is promoted; the writers
run on for ``--after`` seconds. Then, on the new primary:

* every add_model that returned is stored (0 acknowledged rows lost);
* no name is stored twice (no silent duplicate from a retry);
* a call that raised OutcomeUnknown may or may not be stored (counted both ways); one that
  raised any other StorageError is not stored;
* no writer raised anything but OutcomeUnknown (the reconnect timeout outlasts the failover);
* ``modelstore check`` and ``migrate`` on the multi-host URL act on the new primary.

It reports the time without a primary (kill to the first write on the new primary), the longest
call, calls retried, and reconnects.

    PYTHONPATH=harness .venv/bin/python harness/failover.py --trials 5
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
POSTGRES_SH = os.path.join(HERE, '..', 'scripts', 'postgres.sh')

WRITER = '''
import os, sys, time
import modelstore
url, who, stop, out, timeout = sys.argv[1:6]
store = modelstore.connect(url, reconnect_timeout=float(timeout))
log = open(out, 'w', buffering=1)
print('ready', flush=True)
i = 0
while not os.path.exists(stop):
    name = '%s-%d' % (who, i)
    i += 1
    start = time.time()
    try:
        store.add_model(model_name=name, base_model='b', task='t', model_path='/m/' + name)
        outcome = 'ok'
    except modelstore.OutcomeUnknown:
        outcome = 'unknown'
    except modelstore.StorageError as exc:
        outcome = 'error'
        log.write('message %s %s\\n' % (name, ' '.join(str(exc).split())))
    log.write('%s %s %.6f %.6f\\n' % (outcome, name, start, time.time()))
log.write('stats %d %d\\n' % (store.reconnects, store.retried_calls))
'''


def sh(*args):
    return subprocess.run(['bash', POSTGRES_SH] + list(args), check=True, text=True,
                          capture_output=True).stdout.strip()


def port_of(url):
    return url.rsplit(':', 1)[1].split('/')[0]


def cli(url, *args):
    return subprocess.run([sys.executable, '-m', 'modelstore', '--database', url] + list(args),
                          text=True, capture_output=True)


def rows(url):
    import psycopg2
    conn = psycopg2.connect(url)
    try:
        cur = conn.cursor()
        cur.execute('SELECT model_name, COUNT(*) FROM fine_tuned_models GROUP BY model_name')
        return dict(cur.fetchall())
    finally:
        conn.close()


def trial(rng, writers, detect, after, timeout, out):
    """One failover; returns (problems, figures)."""
    work = tempfile.mkdtemp(prefix='modelstore-failover-')
    os.chmod(work, 0o755)  # The server user enters it (scripts/postgres.sh, as root).
    primary_dir, standby_dir = os.path.join(work, 'primary'), os.path.join(work, 'standby')
    procs = []
    try:
        primary = sh('start', primary_dir)
        standby = sh('standby', primary_dir, standby_dir)
        url = ('postgresql://modelstore:modelstore@127.0.0.1:%s,127.0.0.1:%s/modelstore'
               '?target_session_attrs=read-write' % (port_of(standby), port_of(primary)))
        problems = []
        for args in (('migrate',), ('check',)):
            result = cli(url, *args)
            if result.returncode != 0:
                problems.append('%s before the failover: exit %d: %s'
                                % (args[0], result.returncode, result.stderr.strip()))
        stop = os.path.join(work, 'stop')
        logs = [os.path.join(work, 'writer-%d.log' % n) for n in range(writers)]
        procs = [subprocess.Popen([sys.executable, '-c', WRITER, url, 'w%d' % n, stop, logs[n],
                                   str(timeout)], stdout=subprocess.PIPE, text=True)
                 for n in range(writers)]
        for proc in procs:
            if proc.stdout.readline().strip() != 'ready':
                raise RuntimeError('a writer did not start')
        time.sleep(rng.uniform(1.0, 3.0))
        killed = time.time()
        sh('crash', primary_dir)
        time.sleep(detect)
        promoting = time.time()
        sh('promote', standby_dir)
        promoted = time.time()
        time.sleep(after)
        open(stop, 'w').close()
        for proc in procs:
            proc.wait(timeout=timeout + 60)
        calls = {'ok': [], 'unknown': [], 'error': []}
        messages, reconnects, retried = [], 0, 0
        for path in logs:
            with open(path) as f:
                for line in f:
                    kind, rest = line.split(' ', 1)
                    if kind == 'stats':
                        r, c = rest.split()
                        reconnects += int(r)
                        retried += int(c)
                    elif kind == 'message':
                        messages.append(rest.strip())
                    else:
                        name, start, end = rest.split()
                        calls[kind].append((name, float(start), float(end)))
        stored = rows(standby)
        lost = [name for name, _, _ in calls['ok'] if name not in stored]
        doubled = sorted(name for name, count in stored.items() if count > 1)
        lied = [name for name, _, _ in calls['error'] if name in stored]
        unknown_stored = sum(name in stored for name, _, _ in calls['unknown'])
        after_kill = [start for _, start, end in calls['ok'] if start >= killed]
        first_write = min((end for _, start, end in calls['ok'] if end > promoted),
                          default=None)
        longest = max(end - start for kind in calls.values() for _, start, end in kind)
        if lost:
            problems.append('%d acknowledged rows lost: %s' % (len(lost), ', '.join(lost[:5])))
        if doubled:
            problems.append('stored twice: %s' % ', '.join(doubled[:5]))
        if lied:
            problems.append('%d calls raised StorageError but were stored' % len(lied))
        if calls['error']:
            problems.append('%d calls failed: %s' % (len(calls['error']), messages[:2]))
        if first_write is None or not after_kill:
            problems.append('no write succeeded on the new primary')
        for args in (('check',), ('migrate',)):
            result = cli(url, *args)
            if result.returncode != 0:
                problems.append('%s after the failover: exit %d: %s'
                                % (args[0], result.returncode, result.stderr.strip()))
        figures = {
            'acknowledged': len(calls['ok']), 'unknown': len(calls['unknown']),
            'unknown_stored': unknown_stored, 'errors': len(calls['error']),
            'lost': len(lost), 'duplicates': len(doubled), 'retried': retried,
            'reconnects': reconnects, 'promoted_after': promoted - killed,
            'promotion': promoted - promoting,
            'no_primary': (first_write - killed) if first_write else None,
            'longest_call': longest,
        }
        print('trial: %(acknowledged)d acknowledged, %(lost)d lost, %(duplicates)d duplicates, '
              '%(unknown)d outcome unknown (%(unknown_stored)d of them stored), %(errors)d '
              'errors; %(retried)d calls retried, %(reconnects)d reconnects; promoted '
              '%(promoted_after).2f s after the kill (promotion took %(promotion).2f s), '
              'first write on the new primary '
              '%(no_primary).2f s after it; longest call %(longest_call).2f s' % dict(
                  figures, no_primary=figures['no_primary'] or float('nan')), file=out)
        for problem in problems:
            print('  PROBLEM: ' + problem, file=out)
        return problems, figures
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for directory in (standby_dir, primary_dir):
            try:
                sh('stop', directory)
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(work, ignore_errors=True)


def run(trials, writers=8, detect=1.0, after=3.0, timeout=30.0, seed=None, out=sys.stdout):
    """Run the trials; returns how many had a problem."""
    seed = random.randrange(1 << 30) if seed is None else seed
    rng = random.Random(seed)
    print('failover: %d trials, %d writers, standby promoted %.1f s after the primary is '
          'killed, seed %d' % (trials, writers, detect, seed), file=out)
    failed, all_figures = 0, []
    for _ in range(trials):
        problems, figures = trial(rng, writers, detect, after, timeout, out)
        failed += bool(problems)
        all_figures.append(figures)
    total = lambda key: sum(f[key] for f in all_figures)  # noqa: E731
    print('failover: %d/%d trials consistent; %d acknowledged rows, %d lost, %d duplicates, '
          '%d outcome unknown (%d stored), %d calls retried; time without a primary %.2f-%.2f '
          's; longest call %.2f s' % (
              trials - failed, trials, total('acknowledged'), total('lost'),
              total('duplicates'), total('unknown'), total('unknown_stored'), total('retried'),
              min(f['no_primary'] or 0 for f in all_figures),
              max(f['no_primary'] or 0 for f in all_figures),
              max(f['longest_call'] for f in all_figures)), file=out)
    return failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--trials', type=int, default=5)
    parser.add_argument('--writers', type=int, default=8)
    parser.add_argument('--detect', type=float, default=1.0,
                        help='seconds from the kill to the promotion')
    parser.add_argument('--after', type=float, default=3.0,
                        help='seconds the writers run on after the promotion')
    parser.add_argument('--seed', type=int, default=None)
    args = parser.parse_args(argv)
    return 1 if run(args.trials, args.writers, args.detect, args.after, seed=args.seed) else 0


if __name__ == '__main__':
    sys.exit(main())
