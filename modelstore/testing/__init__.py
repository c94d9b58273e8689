"""Testing your migrations: ``check_migrations`` and the pytest plugin (``plugin``).

One line in a project's test suite::

    from modelstore.testing import check_migrations

    def test_migrations():
        check_migrations('migrations', models='myapp.models')

It raises ``AssertionError`` with a report of every problem unless:

* the scripts are numbered 1, 2, 3 ... with no gap and no number used twice, and every ``.py``
  file in the directory is a ``NNNN_slug.py`` script;
* every script loads and defines ``up(migrator, db)`` and ``down(migrator, db)``;
* replayed in order on an empty database, each script's ``up`` then ``down`` gives back exactly
  the schema before it (tables, columns with type, nullability and default, indexes by name,
  foreign keys), and ``up`` run again gives exactly the schema of the first ``up``;
* the schema at head matches the models: ``modelstore check`` would find no drift and
  ``modelstore new --auto`` nothing to write;
* ``modelstore lint`` finds nothing (on SQLite, and on ``url``'s server): no contract change
  in an expand script, no table rewrite or lock, no released script edited...

With ``previous`` (a release's wheel or sdist, a source directory, or ``'git:REF'``), that
release is installed in a throwaway venv and its registry calls and the legacy apps'
statements are run on the schema after each expand script (modelstore.testing.previous).

The replay runs on an in-memory SQLite database, or with ``url`` on a throwaway database of that
server, dropped afterwards (see modelstore.engine.shadow): nothing real is touched, even by a
script that commits.
"""
from ..authoring import check_directory, lint_problems, load_models, plan_changes
from ..engine import (apply, detect_drift, discover, schema_differences as _differences,
                      schema_of, shadow_database)
from ..exceptions import ModelStoreError, ScriptError
from .previous import check_previous

__all__ = ['check_migrations', 'schema_of']


def _numbering(directory, problems):
    numbers = {}
    for number, slug in check_directory(directory):
        numbers.setdefault(number, []).append('%04d_%s' % (number, slug))
    for number, names in sorted(numbers.items()):
        if len(names) > 1:
            problems.append('numbering: %s share the number %d' % (' and '.join(names), number))
    ordered = sorted(numbers)
    if ordered and ordered[0] not in (0, 1):
        problems.append('numbering: the first script is number %d, not 1' % ordered[0])
    for before, after in zip(ordered, ordered[1:]):
        if after != before + 1:
            missing = ', '.join('%04d' % n for n in range(before + 1, after))
            problems.append('numbering: a gap between %s and %s (no %s)'
                            % (numbers[before][0], numbers[after][0], missing))
    return len(numbers) == len(sum(numbers.values(), []))


def _loaded(scripts, problems):
    ok = True
    for script in scripts:
        try:
            script.load(('up', 'down'))
        except ScriptError as exc:
            problems.append(str(exc))
            ok = False
    return ok


def _round_trips(scripts, database, problems):
    """Each script: up, down (back to before?), up again (same as the first up?)."""
    for script in scripts:
        before = schema_of(database)
        try:
            apply(script, database)
            after = schema_of(database)
            apply(script, database, direction='down')
            problems.extend('%s: up then down does not restore the schema: %s' % (script.name,
                                                                                  line)
                            for line in _differences(before, schema_of(database)))
            apply(script, database)
        except ScriptError as exc:
            problems.append(str(exc))
            return False
        problems.extend('%s: up run again gives another schema: %s' % (script.name, line)
                        for line in _differences(after, schema_of(database)))
    return True


def _head(database, models, problems):
    plan = plan_changes(database, models)
    lines = ['%s (modelstore new --auto would generate it)' % line for line in plan.summary()]
    lines += plan.todos
    if not lines:  # What only the drift check looks at (an INVALID index, say).
        lines = detect_drift(database, models).lines
    problems.extend('head does not match the models: %s' % line for line in lines)


def check_migrations(directory=None, url=None, models=None, previous=None):
    """Raise AssertionError with a readable report unless the scripts in ``directory``
    (default ``./migrations``) are sound and their head matches ``models`` (a module path such
    as ``'myapp.models'``, a list of model classes, or None for ``modelstore.models``) -- and,
    with ``previous`` (a wheel, a source directory or ``'git:REF'``), unless that release keeps
    working after each expand script (modelstore.testing.previous)."""
    directory = directory or 'migrations'
    problems = []
    try:
        classes = load_models(models)
        numbered = _numbering(directory, problems)
        scripts = discover(directory) if numbered else []
        if numbered and not scripts:
            problems.append('%s holds no migration scripts' % directory)
        if scripts and _loaded(scripts, problems):
            with shadow_database(url) as database:
                if _round_trips(scripts, database, problems):
                    _head(database, classes, problems)
            # The linter (modelstore lint); the round trip and loading are reported above.
            problems.extend(lint_problems(directory, url, skip=('MS000', 'MS006')))
            if previous is not None:
                problems.extend(check_previous(previous, directory, url))
    except ModelStoreError as exc:
        problems.append(str(exc))
    if problems:
        raise AssertionError('check_migrations(%r): %d problem%s\n%s' % (
            directory, len(problems), '' if len(problems) == 1 else 's',
            '\n'.join('  - %s' % p for p in problems)))
