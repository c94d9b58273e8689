"""One Run per engine call: its strategy chosen by the dialect, and the one Observer it tells."""
import pytest

from modelstore.dialects import dialect_of
from modelstore.engine import Engine, Observer, Run
from modelstore.engine.backup import Backups
from modelstore.engine.nontx import Logged
from modelstore.engine.run import Transactional
from modelstore.shared.database import open_database

from test_engine import ADD_B, CREATE_A  # The two scripts its tests run.


class Recording(Observer):
    def __init__(self):
        self.events = []

    def backup(self, backup):
        self.events.append(('backup', backup))

    def script_started(self, script):
        self.events.append(('started', script.name))

    def script_finished(self, result):
        self.events.append(('finished', result.name))


def _scripts(scripts):
    scripts('0001_create_a.py', CREATE_A)
    scripts('0002_add_b.py', ADD_B)


def _checked(events, names):
    """Each script started, then finished (SQLite reports it when the run commits)."""
    started = [name for kind, name in events if kind == 'started']
    finished = [name for kind, name in events if kind == 'finished']
    assert started == names and finished == names
    for name in names:
        assert events.index(('started', name)) < events.index(('finished', name))


def test_the_observer_is_told_each_script_started_and_finished(scripts, db_url):
    _scripts(scripts)
    engine = Engine(open_database(db_url, mode='migrate'), scripts.dir)
    observer = Recording()
    result = engine.migrate(observer=observer)
    assert [r.name for r in result.runs] == ['0001_create_a', '0002_add_b']
    _checked(observer.events, ['0001_create_a', '0002_add_b'])
    observer = Recording()
    engine.rollback('0001_create_a', observer=observer)
    _checked(observer.events, ['0002_add_b', '0001_create_a'])
    observer = Recording()
    engine.migrate(dry_run=True, observer=observer)  # Shown, not applied.
    _checked(observer.events, ['0001_create_a', '0002_add_b'])
    assert engine.status().pending == ['0001_create_a', '0002_add_b']


def test_an_observer_and_the_keyword_callbacks_are_both_told(scripts, db_url):
    _scripts(scripts)
    engine = Engine(open_database(db_url, mode='migrate'), scripts.dir)
    observer, told = Recording(), []
    engine.migrate(observer=observer, on_script=lambda run: told.append(run.name))
    assert told == ['0001_create_a', '0002_add_b']
    _checked(observer.events, told)


def test_the_strategy_is_chosen_once_by_the_dialects_operation_log(scripts, db_url):
    database = open_database(db_url, mode='migrate')
    run = Run(Engine(database, scripts.dir), Observer())
    expected = Logged if dialect_of(database).operation_log else Transactional
    assert type(run.strategy) is expected
    assert run.lock is None and run.todo == [] and not run.interrupted


def test_the_observer_is_told_of_the_backup_the_run_took(scripts, db_path):
    scripts('0001_create_a.py', CREATE_A)
    database = open_database('sqlite:///' + db_path, mode='migrate')
    engine = Engine(database, scripts.dir, backups=Backups(db_path))
    engine.migrate()
    database.execute_sql("INSERT INTO a (name) VALUES ('kept')")
    scripts('0002_add_b.py', ADD_B)
    observer = Recording()
    result = engine.migrate(observer=observer)
    assert result.backup is not None
    assert observer.events[0] == ('backup', result.backup)
    _checked(observer.events[1:], ['0002_add_b'])


@pytest.mark.parametrize('call', ['migrate', 'rollback'])
def test_each_call_makes_its_own_run(scripts, db_url, call, monkeypatch):
    _scripts(scripts)
    engine = Engine(open_database(db_url, mode='migrate'), scripts.dir)
    engine.migrate()
    made = []
    original = Run.__init__

    def init(self, *args):
        made.append(self)
        original(self, *args)
    monkeypatch.setattr(Run, '__init__', init)
    getattr(engine, call)()
    getattr(engine, call)()
    assert len(made) == 2 and made[0] is not made[1]
    assert not hasattr(engine, '_interrupted') and not hasattr(engine, '_on_progress')
