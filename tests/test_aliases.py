"""Aliases and the registry's events (0013, issue 29): NAME@ALIAS names the version that
serves; every set, move and removal -- and every model deleted -- is an event, numbered in
commit order, which alias_history and the events() feed read back. Racing moves and racing
writers run in separate processes on every backend."""
import datetime
import getpass
import json
import os
import socket
import subprocess
import sys
import time

import pytest

import modelstore
from modelstore import NotFound, ValidationError

from conftest import execute

MODEL = dict(base_model='b', task='t', model_path='/p')


ADDED = 3  # The store fixture's models: events 1-3 (model.added).


@pytest.fixture
def store(head_url):
    with modelstore.connect(head_url, actor='deployer@ci') as s:
        for i in range(1, 4):
            s.add_model(model_name='chat', **dict(MODEL, model_path='/p/%d' % i))
        yield s


def test_an_alias_names_one_version_and_resolves_wherever_a_version_does(store):
    alias = store.set_alias('chat', 'champion', 2)
    assert (alias.model_name, alias.alias, alias.version, alias.protected) == (
        'chat', 'champion', 2, False)
    assert alias.model_id == store.get_model('chat@2').id and alias.updated_by == 'deployer@ci'
    assert store.get_model('chat@champion').version == 2
    assert store.get_model_version('chat', 'champion').version == 2
    assert store.get_model('chat').version == 3  # The bare name is still the latest.
    assert [a.alias for a in store.list_aliases('chat')] == ['champion']
    with pytest.raises(NotFound, match="model 'chat' has no alias 'nope' \\(its aliases: "
                                       "champion\\)"):
        store.get_model('chat@nope')


def test_moving_an_alias_is_recorded_with_before_and_after(store):
    store.set_alias('chat', 'champion', 1)
    store.set_alias('chat', 'champion', 1)  # Nothing changes: no event.
    store.set_alias('chat', 'champion', 3)
    store.delete_alias('chat', 'champion')
    history = store.alias_history('chat', 'champion')
    assert [(e.kind, e.version) for e in history] == [
        ('alias.set', 1), ('alias.moved', 3), ('alias.removed', 3)]
    assert history[1].before['version'] == 1 and history[1].after['version'] == 3
    assert history[2].after is None and {e.actor for e in history} == {'deployer@ci'}
    assert [e.seq for e in history] == sorted(e.seq for e in history)
    assert all(isinstance(e.at, datetime.datetime) for e in history)
    with pytest.raises(NotFound):
        store.get_model('chat@champion')


def test_what_served_at_a_time(store):
    store.set_alias('chat', 'prod', 1)
    time.sleep(1.1)  # Well apart, whatever the clock's resolution.
    between = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(1.1)
    store.set_alias('chat', 'prod', 2)
    served = store.alias_history('chat', 'prod', at=between)
    assert served[-1].after['version'] == 1
    assert store.alias_history('chat', 'prod')[-1].after['version'] == 2
    assert store.alias_history('chat', 'prod', at=datetime.datetime(2000, 1, 1)) == []
    # Text and naive datetimes (UTC) are accepted too.
    assert store.alias_history('chat', 'prod', at=between.isoformat())[-1].version == 1


def test_a_protected_alias_moves_only_with_force(store):
    store.set_alias('chat', 'champion', 1, protected=True)
    for call in (lambda: store.set_alias('chat', 'champion', 2),
                 lambda: store.set_alias('chat', 'champion', 1, protected=False),
                 lambda: store.delete_alias('chat', 'champion')):
        with pytest.raises(ValidationError, match='chat@champion is protected'):
            call()
    assert store.get_model('chat@champion').version == 1  # Nothing moved.
    assert len(store.alias_history('chat', 'champion')) == 1
    moved = store.set_alias('chat', 'champion', 2, force=True)
    assert moved.version == 2 and moved.protected  # Still protected after the move.
    store.delete_alias('chat', 'champion', force=True)
    assert store.list_aliases('chat') == []


def test_an_archived_version_gets_no_alias(store):
    store.archive_model(store.get_model('chat@1').id)
    with pytest.raises(ValidationError, match="version 1 of 'chat' is archived"):
        store.set_alias('chat', 'prod', 1)
    assert store.list_aliases('chat') == [] and store.events()[-1].kind == 'model.archived'


def test_a_model_an_alias_points_at_is_not_deleted_nor_renamed(store, tmp_path):
    target = store.get_model('chat@2')
    store.set_alias('chat', 'champion', 2)
    store.set_alias('chat', 'canary', 2)
    with pytest.raises(ValidationError, match='model %d is what chat@canary, chat@champion '
                                              'point at' % target.id):
        store.delete_model(target.id)
    with pytest.raises(ValidationError, match='nothing was renamed'):
        store.update_model(target.id, model_name='other')
    assert store.get_model(target.id).model_name == 'chat'
    store.update_model(target.id, description='still allowed')
    store.set_alias('chat', 'champion', 3)
    store.delete_alias('chat', 'canary')
    store.delete_model(target.id)
    [event] = [e for e in store.events() if e.kind == 'model.deleted']
    assert (event.model_id, event.model_name, event.version) == (target.id, 'chat', 2)
    assert event.before == {'model_name': 'chat', 'version': 2, 'model_path': '/p/2'}


@pytest.mark.parametrize('call, field, says', [
    (lambda s: s.set_alias('chat', '3', 1), 'alias', 'never a whole number'),
    (lambda s: s.set_alias('chat', 'a b', 1), 'alias', 'a letter, then letters'),
    (lambda s: s.set_alias('chat', 'x' * 256, 1), 'alias', 'at most 255'),
    (lambda s: s.set_alias('chat', 'ok', 0), 'version', 'version from 1'),
    (lambda s: s.set_alias('chat', 'ok', 1, protected='yes'), 'protected', 'True or False'),
    (lambda s: s.set_alias('chat', 'ok', 1, force=1), 'force', 'True or False'),
    (lambda s: s.events(after=-1), 'after', 'from 0'),
    (lambda s: s.events(limit=0), 'limit', 'from 1'),
    (lambda s: s.on_event(None), 'hook', 'callable'),
    (lambda s: s.get_model('12'), 'model_id', 'pass int'),
])
def test_bad_arguments_name_what_was_wrong_and_change_nothing(store, call, field, says):
    with pytest.raises(ValidationError) as err:
        call(store)
    assert err.value.field == field and says in str(err.value)
    assert store.events(after=ADDED) == [] and store.list_aliases('chat') == []


def test_an_alias_of_a_missing_version_is_not_found_and_records_nothing(store):
    with pytest.raises(NotFound, match="no version 9 of a model named 'chat'"):
        store.set_alias('chat', 'champion', 9)
    assert store.events(after=ADDED) == []
    store.set_alias('chat', 'champion', 1)
    assert [e.seq for e in store.events(after=ADDED)] == [4]  # The refused call's number.


def test_the_feed_pages_by_cursor_and_hooks_see_each_event_once(store):
    seen = []
    store.on_event(seen.append)
    for version in (1, 2, 3, 1):
        store.set_alias('chat', 'champion', version)
    events = store.events(after=ADDED, limit=2)
    assert [e.seq for e in events] == [4, 5]
    rest = store.events(after=events[-1].seq, limit=10)
    assert [e.seq for e in rest] == [6, 7]
    assert [e.seq for e in seen] == [4, 5, 6, 7]
    assert store.events(after=7) == []


def test_the_default_actor_is_user_at_host(head_url):
    with modelstore.connect(head_url) as s:
        s.add_model(model_name='m', **MODEL)
        s.set_alias('m', 'a', 1)
        assert s.events()[0].actor == '%s@%s' % (getpass.getuser(), socket.gethostname())
    with pytest.raises(ValidationError, match='actor'):
        modelstore.connect(head_url, actor='')


# -- racing processes -------------------------------------------------------------------------

RACER = r'''
import json, sys, time
import modelstore
url, name, start, moves = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
store = modelstore.connect(url, actor=name)
while time.time() < start:
    time.sleep(0.001)
done = []
for i in range(moves):
    version = 1 + (i + (0 if name == 'a' else 1)) % 3
    for attempt in range(50):
        try:
            if name.startswith('add'):  # A pipeline registering models meanwhile.
                done.append(store.add_model(model_name='chat', base_model='b', task='t',
                                            model_path='/p/%s/%d' % (name, i)).id)
            else:
                store.set_alias('chat', 'champion', version)
                done.append(version)
            break
        except modelstore.StorageError as exc:  # SQLite busy past its timeout: try again.
            time.sleep(0.01)
    else:
        raise SystemExit('never stored')
print(json.dumps(done))
'''


def _racers(url, tmp_path, names, moves):
    script = tmp_path / 'racer.py'
    script.write_text(RACER)
    start = time.time() + 1.0
    procs = [subprocess.Popen([sys.executable, str(script), url, name, str(start), str(moves)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in names]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outs.append(json.loads(out))
    return outs


def test_racing_moves_in_two_processes_are_all_recorded_and_never_torn(store, head_url,
                                                                       tmp_path):
    """Two processes move one alias 30 times each: every move that returned is an event,
    the events chain (each one's before is the previous one's after), and the alias is where
    the last event says."""
    moves = 30
    _racers(head_url, tmp_path, ['a', 'b'], moves)
    history = store.alias_history('chat', 'champion')
    # A move to where the alias already is records nothing; every other move is one event.
    assert 1 <= len(history) <= 2 * moves
    assert [e.seq for e in history] == sorted({e.seq for e in history})
    for before, after in zip(history, history[1:]):
        assert after.before == before.after, (before.seq, after.seq)
    assert {e.actor for e in history} <= {'a', 'b'}
    final = store.list_aliases('chat')[0]
    assert final.version == history[-1].after['version']
    assert final.model_id == history[-1].after['model_id']


FOLLOWER = r'''
import json, sys, time
import modelstore
url, until = sys.argv[1], float(sys.argv[2])
store = modelstore.connect(url)
seen, cursor = [], 0
while True:
    last_round = time.time() > until
    for event in store.events(after=cursor, limit=7):
        seen.append(event.seq)
        cursor = event.seq
    if last_round:
        break
    time.sleep(0.002)
print(json.dumps(seen))
'''


def test_a_follower_polling_the_feed_never_misses_an_event_of_racing_writers(
        store, head_url, tmp_path):
    """Three writers move aliases and a fourth adds models while a follower polls with its
    cursor: it reads every event exactly once, in order -- none committed behind its cursor."""
    script = tmp_path / 'follower.py'
    script.write_text(FOLLOWER)
    follower = subprocess.Popen([sys.executable, str(script), head_url, str(time.time() + 8)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    *_, added = _racers(head_url, tmp_path, ['a', 'b', 'a', 'add'], 25)
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, err
    seen = json.loads(out)
    every = [e.seq for e in store.events(limit=1000)]
    assert seen == every and every == sorted(set(every)) and len(every) > 20
    assert [e.model_id for e in store.events(limit=1000)
            if e.kind == 'model.added' and e.actor == 'add'] == added


# -- the command line ---------------------------------------------------------------------------

def test_the_alias_commands(store, head_url, cli):
    code, out, err = cli('models', 'alias', 'set', 'chat', 'champion', '2', '--protected',
                         '--database', head_url, '--json')
    assert code == 0, err
    [row] = json.loads(out)
    assert (row['alias'], row['version'], row['protected']) == ('champion', 2, True)
    code, out, err = cli('models', 'show', 'chat@champion', '--database', head_url, '--json')
    assert code == 0 and json.loads(out)[0]['version'] == 2
    code, out, err = cli('models', 'alias', 'set', 'chat', 'champion', '3', '--database',
                         head_url)
    assert code == 2 and 'error: ALIAS: chat@champion is protected: move it with --force' in err
    assert cli('models', 'alias', 'set', 'chat', 'champion', '3', '--force', '--database',
               head_url)[0] == 0
    code, out, err = cli('models', 'alias', 'ls', 'chat', '--database', head_url)
    assert code == 0 and out.splitlines()[1].split()[:4] == ['champion', '3', '3', 'yes']
    code, out, err = cli('models', 'alias', 'rm', 'chat', 'champion', '--force', '--database',
                         head_url, '--json')
    assert code == 0 and json.loads(out) == {'model_name': 'chat', 'alias': 'champion',
                                             'removed': True, 'ok': True}
    code, out, err = cli('models', 'events', '--database', head_url, '--jsonl')
    assert [json.loads(line)['kind'] for line in out.splitlines()] == [
        'model.added'] * ADDED + ['alias.set', 'alias.moved', 'alias.removed']
    code, out, err = cli('models', 'events', '--after', '5', '--database', head_url, '--json')
    assert [e['seq'] for e in json.loads(out)] == [6]


@pytest.mark.parametrize('args, says', [
    (['set', 'chat', '12', '1'], 'ALIAS: must be a letter'),
    (['set', 'chat', 'ok', 'two'], 'VERSION: a whole number of at least 1'),
    (['set', 'chat', 'ok', '9'], "no version 9 of a model named 'chat'"),
    (['rm', 'chat', 'nope'], "model 'chat' has no alias 'nope'"),
])
def test_bad_alias_commands_say_what_was_wrong_and_change_nothing(store, head_url, cli, args,
                                                                  says):
    code, out, err = cli('models', 'alias', *args, '--database', head_url)
    assert code == 2 and says in err, (code, err)
    assert store.events(after=ADDED) == [] and store.list_aliases('chat') == []


def test_events_follow_prints_each_event_as_it_commits(store, head_url):
    follower = subprocess.Popen(
        [sys.executable, '-m', 'modelstore', 'models', 'events', '--follow', '--interval', '0.1',
         '--after', str(ADDED), '--jsonl', '--database', head_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        store.set_alias('chat', 'champion', 1)
        first = json.loads(follower.stdout.readline())
        store.set_alias('chat', 'champion', 2)
        second = json.loads(follower.stdout.readline())
        assert (first['seq'], first['kind'], second['kind']) == (4, 'alias.set', 'alias.moved')
    finally:
        follower.send_signal(2)  # SIGINT: how a follower is stopped.
        out, err = follower.communicate(timeout=30)
    assert follower.returncode == 130 and err == '', err


def test_events_follow_takes_no_limit(store, head_url, cli):
    code, out, err = cli('models', 'events', '--follow', '--limit', '5', '--database', head_url)
    assert code == 2 and '--limit: not with --follow' in err


def test_a_delete_racing_an_alias_set_never_leaves_the_alias_dangling(store, head_url,
                                                                      tmp_path):
    """Process A sets chat@prod to version 1 while process B deletes version 1 with its
    files, at the same instant, 20 times: one of them is refused each time -- never both
    done, which would leave the alias naming a deleted row (MySQL's REPEATABLE READ once let
    the delete's stale first read miss the alias)."""
    script = tmp_path / 'race.py'
    script.write_text(RACE)
    root = tmp_path / 'models'
    root.mkdir()
    for round_ in range(20):
        folder = root / ('m%d' % round_)
        folder.mkdir()
        model = store.add_model(model_name='race%d' % round_, **dict(MODEL,
                                                                     model_path=str(folder)))
        start = time.time() + 0.8
        procs = [subprocess.Popen([sys.executable, str(script), head_url, str(root), what,
                                   str(model.id), model.model_name, str(start)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for what in ('alias', 'delete')]
        outcomes = [p.communicate(timeout=120) for p in procs]
        results = [out.strip() for out, _ in outcomes]
        assert all(r in ('done', 'refused') for r in results), outcomes
        assert results.count('done') == 1, results
        aliases = store.list_aliases(model.model_name)
        if aliases:
            assert store.get_model(aliases[0].model_id).id == model.id
            store.delete_alias(model.model_name, 'prod')


RACE = r'''
import sys, time
import modelstore
url, root, what, model_id, name, start = sys.argv[1:]
store = modelstore.connect(url, models_root=root)
store.get_model(int(model_id))
while time.time() < float(start):
    time.sleep(0.0005)
try:
    if what == 'alias':
        store.set_alias(name, 'prod', 1)
    else:
        store.delete_model(int(model_id), files=True)
    print('done')
except (modelstore.ValidationError, modelstore.NotFound):
    print('refused')
'''


def test_an_alias_left_pointing_at_a_row_deleted_by_hand_says_so(store, head_url):
    """A legacy app's own DELETE does not go through modelstore's refusal: the alias is left
    pointing at nothing, and resolving it says what happened and what to do."""
    store.set_alias('chat', 'champion', 2)
    execute(head_url, 'DELETE FROM fine_tuned_models WHERE id = %d'
            % store.get_model('chat@2').id)
    with pytest.raises(NotFound, match="no version 2 of a model named 'chat': chat@champion "
                                       "points at it, and it was deleted by a program that "
                                       "does not keep aliases"):
        store.get_model('chat@champion')
    store.set_alias('chat', 'champion', 3)  # Moved on.
    assert store.get_model('chat@champion').version == 3
