"""Writing the next migration script: ``modelstore new SLUG`` and ``new --auto SLUG``.

``new_script`` writes an empty script to fill in. ``generate`` writes it from the difference
between the models and the schema the existing scripts produce -- replayed on a shadow database
(``engine.shadow``), so no user database is needed or touched -- and never writes a silently
wrong script: what it cannot generate safely is a TODO (``plan``, ``render``). ``files`` finds the
directory and the next number. ``lint`` checks the statements the scripts run, captured on a
shadow replay, against the rules of safe rolling deploys (``linter``, ``lint_replay``,
``lint_rules``). It stands on the engine (scripts, shadow, drift) and never imports the
registry.
"""
import datetime
import textwrap
from dataclasses import dataclass, field
from typing import List

from ..engine import discover, replay, shadow_database
from .linter import RULES, lint, lint_problems
from .model_classes import DEFAULT_MODELS, load_models
from .script_files import check_directory, next_names, write_new
from .plan import Plan, plan_changes
from .pysource import printable
from .script_text import render

__all__ = ['new_script', 'generate', 'diff_schema', 'Generated', 'DEFAULT_DIRECTORY',
           'DEFAULT_MODELS', 'load_models', 'check_directory', 'plan_changes', 'printable',
           'lint', 'lint_problems', 'RULES']

DEFAULT_DIRECTORY = 'migrations'

TEMPLATE = '''"""{title}: TODO say what this script changes and why.

Written by `modelstore new` on {date}. Declare tables as frozen models inside the script (see
0001), give a NOT NULL column a database-side constant default in its one ADD COLUMN
(`constraints=[SQL('DEFAULT ...')]`, `allow_not_null=True`), and make down() undo up().
"""
from peewee import *


def up(migrator, db):
    # migrator.migrate(
    #     migrator.add_column('fine_tuned_models', 'notes', TextField(null=True)))
    pass


def down(migrator, db):
    # migrator.migrate(migrator.drop_column('fine_tuned_models', 'notes'))
    pass
'''


def _title(slug):
    return slug.replace('_', ' ').strip().capitalize() or slug


def new_script(slug, directory=None):
    """Write an empty ``NNNN_slug.py`` (next free number) in ``directory``; returns its path."""
    directory = directory or DEFAULT_DIRECTORY
    [name] = next_names(directory, slug)
    text = TEMPLATE.format(title=_title(slug), date=datetime.date.today().isoformat())
    return write_new(directory, [(name, text)])[0]


@dataclass
class Generated:
    """What ``generate`` found and wrote: ``paths`` (empty when nothing differs or
    ``write=False``), ``files`` [(name, text)], the ``plan`` and its ``todos``."""
    plan: Plan
    files: List[tuple] = field(default_factory=list)
    paths: List[str] = field(default_factory=list)

    @property
    def todos(self):
        return self.plan.todos

    @property
    def changed(self):
        return bool(self.plan)


def diff_schema(directory=None, models=None, url=None, contract=False, renames=()):
    """The Plan from the schema the scripts in ``directory`` produce to ``models`` (a spec
    or a list of model classes), replayed on ``url``'s backend (default: in-memory SQLite);
    ``contract`` and ``renames`` as plan_changes takes them."""
    directory = directory or DEFAULT_DIRECTORY
    check_directory(directory)
    classes = load_models(models)
    scripts = discover(directory)
    with shadow_database(url) as shadow:
        replay(scripts, shadow)
        return plan_changes(shadow, classes, contract=contract, renames=renames)


def generate(slug, directory=None, models=None, url=None, write=True, contract=False,
             renames=()):
    """Write the script (or two: schema, then indexes) that takes the scripts' schema to the
    models. Nothing is written when nothing differs, or with ``write=False``.

    The script is an expand script: a column no field maps is left for a contract script
    (``plan.contract_pending``). ``contract=True`` writes that one -- ``renames`` ((table, old,
    new) triples), and a drop of every other column no field maps -- and refuses while the
    models also need expand changes (plan.plan_changes)."""
    directory = directory or DEFAULT_DIRECTORY
    spec = models if isinstance(models, str) else (DEFAULT_MODELS if models is None else None)
    plan = diff_schema(directory, models, url, contract=contract, renames=renames)
    result = Generated(plan)
    if not plan.scripts:
        return result
    two = (plan.schema_changes or plan.todos) and plan.index_changes
    names = next_names(directory, slug, 2 if two else 1)
    parts = [plan.schema_summary(), plan.index_summary()] if two else [plan.summary()]
    docstrings = [_docstring(slug, spec or 'the given models', lines) for lines in parts]
    result.files = render(plan, names, docstrings, spec.partition(':')[0] if spec else None)
    if write:
        result.paths = write_new(directory, result.files)
    return result


def _docstring(slug, origin, lines):
    # printable() first: a value's newline is shown as \n, never wrapped away or kept.
    done = '\n'.join(textwrap.fill(printable(line), 99, initial_indent='* ',
                                    subsequent_indent='  ', break_on_hyphens=False)
                      for line in lines) or '* (nothing generated: see the TODOs)'
    return ('%s: TODO say why.\n\nGenerated by `modelstore new --auto` from %s on %s:\n\n%s\n'
            % (_title(slug), printable(origin), datetime.date.today().isoformat(), done))
