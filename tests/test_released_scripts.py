"""Released migration scripts are frozen: their text is held to tests/data/released_scripts.json.

A database records the checksum of every script it applied; a shipped script whose text changes
is refused there (ChecksumMismatch), and a database migrated by the old text no longer runs the
script users were promised. So once released -- in a version tag, or in any build handed to users
-- a script's text never changes and the script is never removed or renamed: a change, including
what a new backend needs, is a new script. CONTRIBUTING.md says what "released" means.

The list is changed only on purpose, with this file run as a program (never edited by hand):

    .venv/bin/python tests/test_released_scripts.py record           # new scripts, as unreleased
    .venv/bin/python tests/test_released_scripts.py release VERSION  # when tagging VERSION

``record`` adds the scripts not in the list yet and re-records the text of an unreleased one; it
never touches a released entry. ``release`` marks every unreleased entry as released in VERSION.
"""
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SOURCE = os.path.join(REPO, 'migrations')  # The checkout's scripts (modelstore/migrations/,
LIST = os.path.join(HERE, 'data', 'released_scripts.json')  # installed, is tested beside them).
RECORD = '.venv/bin/python tests/test_released_scripts.py record'
ABOUT = ('Every shipped migration script and the SHA-256 of its text (line endings normalised, '
         'as modelstore.engine.scripts.checksum computes it). "released": the version that '
         'first shipped it, or null while it is new. "earlier": the checksums of earlier texts '
         'that modelstore.engine.revisions accepts for it (closed: no script gains one). '
         'Changed only by tests/test_released_scripts.py record / release; see CONTRIBUTING.md.')


def fingerprint(path):
    """SHA-256 of the script with CRLF and CR normalised to LF (a Windows checkout is no edit)."""
    with open(path, 'rb') as fh:
        data = fh.read()
    return hashlib.sha256(data.replace(b'\r\n', b'\n').replace(b'\r', b'\n')).hexdigest()


def on_disk(directory):
    """{script name: path} of the NNNN_slug.py scripts in ``directory``."""
    return {name[:-3]: os.path.join(directory, name) for name in sorted(os.listdir(directory))
            if name.endswith('.py') and name[:4].isdigit()}


def load():
    with open(LIST) as fh:
        return json.load(fh)


def save(recorded):
    with open(LIST, 'w') as fh:
        json.dump(recorded, fh, indent=2)
        fh.write('\n')


def record(argv):
    """``record``: add new scripts and re-record unreleased ones; ``release VERSION``: freeze
    every unreleased one as shipped in VERSION. Returns the exit code."""
    recorded = load()
    entries = {e['name']: e for e in recorded['scripts']}
    if argv[:1] == ['release'] and len(argv) == 2:
        for entry in entries.values():
            if entry['released'] is None:
                entry['released'] = argv[1]
                print('released in %s: %s' % (argv[1], entry['name']))
    elif argv == ['record']:
        scripts = on_disk(SOURCE)
        for name, entry in sorted(entries.items()):
            if entry['released'] is None and name not in scripts:
                print('dropped (unreleased, its file is gone): %s' % name)
                del entries[name]
        for name, path in scripts.items():
            entry = entries.setdefault(name, {'name': name, 'sha256': None, 'released': None,
                                              'earlier': []})
            if entry['sha256'] != fingerprint(path):
                if entry['released'] is not None:
                    print('refused: %s was released in %s; its text is frozen (restore it and '
                          'write a new script)' % (name, entry['released']), file=sys.stderr)
                    return 1
                entry['sha256'] = fingerprint(path)
                print('recorded (unreleased): %s' % name)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    recorded['scripts'] = sorted(entries.values(), key=lambda e: e['name'])
    save(recorded)
    return 0


# -- the tests ------------------------------------------------------------------------------

def _directories():
    """The checkout's migrations/ and, when modelstore is installed, modelstore/migrations/."""
    from modelstore.engine.scripts import installed_directory
    installed = installed_directory()
    return [SOURCE] + ([installed] if installed else [])


def test_every_shipped_script_has_the_text_it_was_recorded_with():
    recorded = {e['name']: e for e in load()['scripts']}
    problems = []
    for directory in _directories():
        shown = os.path.relpath(directory, REPO) if directory == SOURCE else directory
        scripts = on_disk(directory)
        for name, path in scripts.items():
            entry = recorded.get(name)
            if entry is None:
                problems.append(
                    '%s/%s.py is not in tests/data/released_scripts.json. If it is a new script, '
                    'record it on purpose: `%s` (it stays editable, re-recorded the same way, '
                    'until a release tags it)' % (shown, name, RECORD))
            elif entry['sha256'] != fingerprint(path):
                if entry['released']:
                    problems.append(
                        '%s/%s.py was edited after its release in %s (recorded sha256 %s, now '
                        '%s). A released script is frozen: databases that applied it hold its '
                        'checksum and would refuse to start. Put its released text back (git '
                        'log -p migrations/%s.py) and write the change as a new script '
                        '(modelstore new SLUG); a new backend\'s needs go into new scripts '
                        'too. See CONTRIBUTING.md, "Released scripts are frozen".'
                        % (shown, name, entry['released'], entry['sha256'][:12],
                           fingerprint(path)[:12], name))
                else:
                    problems.append(
                        '%s/%s.py changed since it was recorded; it is not released yet, so if '
                        'the change is meant, record it again: `%s`' % (shown, name, RECORD))
        for name in sorted(set(recorded) - set(scripts)):
            if recorded[name]['released']:
                problems.append(
                    '%s/%s.py is gone, and it was released in %s: a released script is never '
                    'removed or renamed (a database that applied it would find its history '
                    'naming a script this code lacks). Put it back.'
                    % (shown, name, recorded[name]['released']))
            else:
                problems.append('%s/%s.py (unreleased) is gone: drop its entry with `%s`'
                                % (shown, name, RECORD))
    assert not problems, '\n'.join(problems)


def test_the_fingerprint_is_the_one_modelstore_records():
    """The list means what databases hold only while modelstore hashes a script as this file
    does: a change of algorithm would make every applied script look edited."""
    from modelstore.engine.scripts import checksum
    for path in on_disk(SOURCE).values():
        assert checksum(path) == fingerprint(path), path
    for entry in load()['scripts']:
        assert len(entry['sha256']) == 64 and set(entry['sha256']) <= set('0123456789abcdef')


def test_no_released_script_gains_another_accepted_earlier_text():
    """modelstore.engine.revisions lets a database that applied an earlier text of 0001 and
    0008-0010 keep them (they gained MySQL branches before scripts were frozen). That door is
    closed: the accepted earlier texts are exactly those recorded, and a script recorded
    since has none."""
    from modelstore.engine.scripts import default_directory, discover
    recorded = {e['name']: set(e['earlier']) for e in load()['scripts']}
    accepted = {s.name: set(s.earlier) for s in discover(default_directory())}
    assert accepted == {name: recorded.get(name, set()) for name in accepted}, (
        'the earlier texts modelstore accepts for a shipped script changed. A shipped script is '
        'not revised to serve a new backend or a fix: write a new script instead.')


def test_today_every_script_is_released():
    """When the list was made (issue 27), every script then shipped (0001-0011) counted as
    released: builds holding them had migrated users' databases before any version tag."""
    recorded = {e['name']: e['released'] for e in load()['scripts']}
    assert ['%04d' % n for n in range(1, 12)] == sorted(n[:4] for n in recorded)[:11]
    assert all(recorded[n] for n in sorted(recorded)[:11])


def test_the_recording_tool_refuses_a_released_script_and_records_a_new_one(tmp_path,
                                                                           monkeypatch):
    source = tmp_path / 'migrations'
    source.mkdir()
    (source / '0001_initial.py').write_text('def up(migrator, db):\n    pass\n')
    listed = tmp_path / 'released_scripts.json'
    listed.write_text(json.dumps({'about': ABOUT, 'scripts': [{
        'name': '0001_initial', 'sha256': fingerprint(str(source / '0001_initial.py')),
        'released': '0.1.0', 'earlier': []}]}))
    module = sys.modules[__name__]
    monkeypatch.setattr(module, 'SOURCE', str(source))
    monkeypatch.setattr(module, 'LIST', str(listed))

    (source / '0002_next.py').write_text('def up(migrator, db):\n    pass\n')
    assert record(['record']) == 0
    entries = {e['name']: e for e in load()['scripts']}
    assert entries['0002_next']['released'] is None
    assert entries['0002_next']['sha256'] == fingerprint(str(source / '0002_next.py'))

    (source / '0002_next.py').write_text('def up(migrator, db):\n    return None\n')
    assert record(['record']) == 0  # Unreleased: re-recorded.
    assert load()['scripts'][1]['sha256'] == fingerprint(str(source / '0002_next.py'))

    assert record(['release', '0.2.0']) == 0
    assert [e['released'] for e in load()['scripts']] == ['0.1.0', '0.2.0']
    before = listed.read_text()
    (source / '0002_next.py').write_text('def up(migrator, db):\n    pass  # edited\n')
    assert record(['record']) == 1  # Released: refused, and the list is left as it was.
    assert listed.read_text() == before
    assert record(['bogus']) == 2


if __name__ == '__main__':
    sys.exit(record(sys.argv[1:]))
