"""modelstore lint: each rule fires on a script that breaks it and not on its fixed form.

The scripts replay on SQLite in memory always, and with MODELSTORE_TEST_DATABASE_URL set also on
that server (a throwaway database): the rules whose statements differ per backend have tests of
their own per backend.
"""
import json
import os

import pytest

from conftest import TEST_URL
from modelstore.authoring import lint
from modelstore.engine.scripts import checksum, default_directory
from modelstore.shared.urls import parse_url
from modelstore.testing import check_migrations

SERVER = [parse_url(TEST_URL)] if TEST_URL else []
REPO_RELEASED = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data',
                             'released_scripts.json')

TABLE = '''
from peewee import *


def up(migrator, db):
    class T(Model):
        name = CharField(null=True)
        size = IntegerField(null=True, constraints=[SQL('DEFAULT 3')])

        class Meta:
            database = db
            table_name = 't'
    db.create_tables([T])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('t'))
'''


def _lint(scripts, body, released=None):
    scripts('0001_table.py', TABLE)
    scripts('0002_change.py', body)
    return lint(scripts.dir, SERVER, released)


def _rules(report, script='0002_change'):
    return {f.rule for f in report.findings if f.script == script}


def _script(up, down='pass', head=''):
    return ('from peewee import *\n%s\n\ndef up(migrator, db):\n    %s\n\n\n'
            'def down(migrator, db):\n    %s\n' % (head, up, down))


# -- the shipped scripts ----------------------------------------------------------------------

def test_the_shipped_scripts_lint_clean_with_their_released_checksums():
    report = lint(default_directory(), SERVER, REPO_RELEASED)
    assert report.findings == [] and report.silenced == [] and report.notes == []
    assert report.scripts >= 11
    assert len(report.backends) == 1 + len(SERVER)


# -- MS001 ------------------------------------------------------------------------------------

DROP = _script("migrator.migrate(migrator.drop_column('t', 'size'))",
               "migrator.migrate(migrator.add_column('t', 'size', IntegerField(null=True, "
               "constraints=[SQL('DEFAULT 3')])))")


def test_ms001_a_drop_in_an_expand_script(scripts):
    report = _lint(scripts, DROP)
    [finding] = [f for f in report.findings if f.rule == 'MS001']
    assert 'drops or renames column t.size' in finding.message
    assert finding.line == 5 and 'size' in finding.statements['sqlite']
    assert finding.backends == ['sqlite'] + [u.backend for u in SERVER]


def test_ms001_the_same_drop_in_a_contract_script_is_no_finding(scripts):
    report = _lint(scripts, DROP.replace('from peewee import *\n',
                                         "from peewee import *\nphase = 'contract'\n"))
    assert 'MS001' not in _rules(report)


def test_ms001_a_contract_script_without_a_contract_change_is_a_note(scripts):
    report = _lint(scripts, _script("migrator.migrate(migrator.add_column('t', 'x', "
                                    "IntegerField(null=True)))",
                                    "migrator.migrate(migrator.drop_column('t', 'x'))",
                                    "phase = 'contract'"))
    assert _rules(report) == set()
    assert [n.rule for n in report.notes] == ['MS001']


# -- MS002 ------------------------------------------------------------------------------------

def test_ms002_a_sqlite_rebuild_and_its_fixed_form(scripts):
    bad = _script("migrator.migrate(migrator.add_not_null('t', 'name'))",
                  "migrator.migrate(migrator.drop_not_null('t', 'name'))", "phase = 'contract'")
    found = [f for f in _lint(scripts, bad).findings if f.rule == 'MS002']
    assert any(f.backends == ['sqlite'] and 'rebuilds table t' in f.message for f in found)


def test_ms002_no_rebuild_for_a_table_made_by_the_same_script(scripts):
    body = TABLE.replace("db.create_tables([T])", "db.create_tables([T])\n    migrator.migrate("
                         "migrator.add_not_null('t', 'name'))")
    scripts('0001_table.py', body)
    assert lint(scripts.dir, SERVER).findings == []


@pytest.mark.postgres_only
def test_ms002_postgresql_set_not_null_needs_a_validated_check(scripts):
    bad = _script("migrator.migrate(migrator.add_not_null('t', 'name'))",
                  "migrator.migrate(migrator.drop_not_null('t', 'name'))", "phase = 'contract'")
    found = [f for f in _lint(scripts, bad).findings
             if f.rule == 'MS002' and 'postgresql' in f.backends]
    assert found and 'SET NOT NULL' in found[0].statements['postgresql']
    fixed = _script(
        "db.execute_sql('ALTER TABLE t ADD CONSTRAINT t_name_nn CHECK (name IS NOT NULL) NOT "
        "VALID')\n    db.execute_sql('ALTER TABLE t VALIDATE CONSTRAINT t_name_nn')\n"
        "    migrator.migrate(migrator.add_not_null('t', 'name'))\n"
        "    db.execute_sql('ALTER TABLE t DROP CONSTRAINT t_name_nn')",
        "migrator.migrate(migrator.drop_not_null('t', 'name'))", "phase = 'contract'")
    scripts('0002_change.py', fixed)
    report = lint(scripts.dir, SERVER)
    assert not [f for f in report.findings if f.rule == 'MS002' and 'postgresql' in f.backends]


@pytest.mark.mysql_only
def test_ms002_mysql_a_type_change_copies_the_table(scripts):
    bad = _script("migrator.migrate(migrator.alter_column_type('t', 'size', "
                  "BigIntegerField(null=True)))",
                  "migrator.migrate(migrator.alter_column_type('t', 'size', "
                  "IntegerField(null=True)))", "phase = 'contract'")
    found = [f for f in _lint(scripts, bad).findings
             if f.rule == 'MS002' and 'mysql' in f.backends]
    assert found and 'ALGORITHM=COPY' in found[0].message
    renamed = _script("migrator.migrate(migrator.rename_column('t', 'size', 'amount'))",
                      "migrator.migrate(migrator.rename_column('t', 'amount', 'size'))",
                      "phase = 'contract'")
    scripts('0002_change.py', renamed)
    report = lint(scripts.dir, SERVER)
    assert not [f for f in report.findings if f.rule == 'MS002' and 'mysql' in f.backends]


# -- MS003 ------------------------------------------------------------------------------------

@pytest.mark.postgres_only
def test_ms003_an_index_without_concurrently_on_an_existing_table(scripts):
    bad = _script("migrator.migrate(migrator.add_index('t', ('name',), False))",
                  "migrator.migrate(migrator.drop_index('t', 't_name'))")
    [finding] = [f for f in _lint(scripts, bad).findings if f.rule == 'MS003']
    assert finding.backends == ['postgresql'] and finding.line == 5
    fixed = ('from peewee import *\natomic = False\n\n\ndef up(migrator, db):\n'
             '    if db.in_transaction():\n'
             "        migrator.migrate(migrator.add_index('t', ('name',), False))\n"
             '    else:\n'
             '        db.execute_sql(\'CREATE INDEX CONCURRENTLY "t_name" ON "t" ("name")\')\n'
             '\n\ndef down(migrator, db):\n'
             "    migrator.migrate(migrator.drop_index('t', 't_name'))\n")
    scripts('0002_change.py', fixed)
    assert 'MS003' not in _rules(lint(scripts.dir, SERVER))


@pytest.mark.postgres_only
def test_ms003_is_silenced_by_an_allow_comment_with_its_reason(scripts):
    body = _script("migrator.migrate(migrator.add_index('t', ('name',), False))  "
                   "# modelstore: allow MS003 -- t holds 200 rows",
                   "migrator.migrate(migrator.drop_index('t', 't_name'))")
    report = _lint(scripts, body)
    assert 'MS003' not in _rules(report)
    assert [(f.rule, f.allowed) for f in report.silenced] == [('MS003', 't holds 200 rows')]


def test_an_index_on_sqlite_is_never_ms003(scripts):
    body = _script("migrator.migrate(migrator.add_index('t', ('name',), False))",
                   "migrator.migrate(migrator.drop_index('t', 't_name'))")
    report = lint(_write(scripts, body), [])
    assert report.findings == []


def _write(scripts, body):
    scripts('0001_table.py', TABLE)
    scripts('0002_change.py', body)
    return scripts.dir


# -- MS004 and MS005 --------------------------------------------------------------------------

def test_ms004_and_ms005_peewees_not_null_add_and_the_one_statement_fix(scripts):
    bad = _script("migrator.migrate(migrator.add_column('t', 'flag', IntegerField(default=0)))",
                  "migrator.migrate(migrator.drop_column('t', 'flag'))")
    rules = _rules(_lint(scripts, bad))
    assert {'MS004', 'MS005'} <= rules
    fixed = _script("migrator.migrate(migrator.add_column('t', 'flag', IntegerField(default=0, "
                    "constraints=[SQL('DEFAULT 0')]), allow_not_null=True))",
                    "migrator.migrate(migrator.drop_column('t', 'flag'))")
    scripts('0002_change.py', fixed)
    assert lint(scripts.dir, SERVER).findings == []


def test_ms005_a_whole_table_update_and_one_with_where(scripts):
    report = _lint(scripts, _script("db.execute_sql('UPDATE t SET size = 4')"))
    assert _rules(report) == {'MS005'}
    scripts('0002_change.py', _script("db.execute_sql('UPDATE t SET size = 4 WHERE id < 10')"))
    assert lint(scripts.dir, SERVER).findings == []


# -- MS006 ------------------------------------------------------------------------------------

def test_ms006_a_down_that_does_not_restore_and_a_missing_down(scripts):
    add = "migrator.migrate(migrator.add_column('t', 'x', IntegerField(null=True)))"
    report = _lint(scripts, _script(add))
    assert _rules(report) == {'MS006'}
    assert any('column t.x' in f.message for f in report.findings)
    scripts('0002_change.py', 'from peewee import *\n\n\ndef up(migrator, db):\n    %s\n' % add)
    [finding] = lint(scripts.dir, SERVER).findings
    assert finding.rule == 'MS006' and 'no down()' in finding.message


def test_ms006_a_contract_script_may_have_no_down(scripts):
    body = "from peewee import *\nphase = 'contract'\n\n\ndef up(migrator, db):\n" \
           "    migrator.migrate(migrator.drop_column('t', 'size'))\n"
    assert 'MS006' not in _rules(_lint(scripts, body))  # (MS002 on SQLite: a rewrite.)


# -- MS007 and MS008 --------------------------------------------------------------------------

def test_ms007_a_released_script_edited_or_gone(scripts, tmp_path):
    body = _script("pass")
    _write(scripts, body)
    released = tmp_path / 'released.json'
    path = os.path.join(scripts.dir, '0002_change.py')
    entries = [{'name': '0002_change', 'sha256': checksum(path), 'released': '1.0',
                'earlier': []}]
    released.write_text(json.dumps({'scripts': entries}))
    assert lint(scripts.dir, [], str(released)).findings == []
    scripts('0002_change.py', body + '# edited\n')
    [finding] = lint(scripts.dir, [], str(released)).findings
    assert finding.rule == 'MS007' and 'changed after its release in 1.0' in finding.message
    entries.append({'name': '0003_gone', 'sha256': '0' * 64, 'released': '1.0'})
    released.write_text(json.dumps({'scripts': entries}))
    assert {f.script for f in lint(scripts.dir, [], str(released)).findings} == {
        '0002_change', '0003_gone'}
    # The default file: released_scripts.json in the scripts directory.
    (tmp_path / 'scripts' / 'released_scripts.json').write_text(released.read_text())
    assert len(lint(scripts.dir, []).findings) == 2


def test_ms008_an_allow_without_a_reason_silences_nothing(scripts):
    body = _script("db.execute_sql('UPDATE t SET size = 4')  # modelstore: allow MS005")
    report = _lint(scripts, body)
    assert _rules(report) == {'MS005', 'MS008'}
    scripts('0002_change.py', _script("# modelstore: allow MS005 -- t holds 3 rows\n"
                                      "    db.execute_sql('UPDATE t SET size = 4')\n"
                                      "    pass  # modelstore: allow MS002 -- nothing here"))
    report = lint(scripts.dir, SERVER)
    assert report.findings == [] and [f.rule for f in report.silenced] == ['MS005']
    assert [(n.rule, n.line) for n in report.notes] == [('MS008', 7)]


# -- bad input, the CLI -----------------------------------------------------------------------

def test_a_script_that_does_not_load_is_ms000_and_exit_2(scripts, cli):
    _write(scripts, 'def up(migrator, db):\n    syntax error here\n')
    code, out, err = cli('lint', '--migrations', scripts.dir)
    assert code == 2 and 'MS000' in out and 'syntax error at line 2' in out


def test_a_missing_directory_is_a_clear_error(cli, tmp_path):
    code, out, err = cli('lint', '--migrations', tmp_path / 'nope')
    assert code == 2 and err.strip() == 'error: migrations directory %s does not exist' % (
        tmp_path / 'nope')


def test_the_cli_exit_codes_and_json(scripts, cli):
    _write(scripts, _script("db.execute_sql('UPDATE t SET size = 4')"))
    code, out, err = cli('lint', '--migrations', scripts.dir, '--json')
    report = json.loads(out)
    assert code == 1 and report['ok'] is False
    [finding] = report['findings']
    assert finding['rule'] == 'MS005' and finding['script'] == '0002_change'
    assert finding['line'] == 5 and finding['statements'] == {
        'sqlite': 'UPDATE t SET size = 4'}
    scripts('0002_change.py', _script('pass'))
    code, out, err = cli('lint', '--migrations', scripts.dir)
    assert code == 0 and out.startswith('✓ 2 scripts lint clean')


def test_check_migrations_reports_the_linters_findings(scripts):
    _write(scripts, _script("db.execute_sql('UPDATE t SET size = 4')"))
    with pytest.raises(AssertionError) as caught:
        check_migrations(scripts.dir, url=TEST_URL,
                         models=[])
    assert 'lint: 0002_change:5: MS005 updates every row of t' in str(caught.value)
