"""Values and names as Python source, for the scripts ``new --auto`` writes.

A generated script is code that runs whenever it is loaded (``migrate --dry-run`` imports it),
so nothing that comes from the models or the schema reaches its text as it is:

* a value -- a default, a table, column or index name, a SQL constraint's text -- is written by
  ``literal()``: ``repr()`` of the plain ``str``, ``int``, ``float``, ``bool`` or ``None`` it is
  (never a subclass's own ``__repr__``), or a tuple of those; anything else is refused;
* a name written as Python -- a model's class, a field's attribute -- must be an identifier that
  is not a keyword and that NFKC normalisation (which Python applies to identifiers) leaves as
  it is (``is_identifier()``); a model's class that is not, or whose name the script needs for
  something else, gets another name there (``class_names()``); a field that is not cannot be
  declared in a class body and is refused (``check_attributes()``);
* text in a comment or in the docstring goes through ``printable()``: a character that is not
  printable (a newline, a carriage return, NUL, an unpaired surrogate, ...) is written as its
  escape, so no value can end a comment; the docstring is then written with its backslashes
  and quotes escaped (``docstring()``), so no value can end it;
* SQL text is written by ``sql_node()``: a ``%`` in it is doubled where the driver would read
  it as a placeholder;
* a value the databases cannot hold -- text with NUL (PostgreSQL refuses it in text) or with an
  unpaired surrogate (not UTF-8) -- is refused where it would be stored (``check_text()``), on
  every backend alike;
* the whole text is compiled, and its docstring must read back as written, before the file is
  written (``check_source()``); a script that fails is never written.
"""
import ast
import keyword
import math
import unicodedata

import peewee

from ..exceptions import ConfigError, ScriptError
from ..shared.text import printable

__all__ = ['literal', 'is_identifier', 'printable', 'docstring', 'check_text', 'check_source',
           'class_names', 'check_attributes', 'sql_node']


def literal(value):
    """Python source that evaluates to ``value`` (None, bool, int, float, str, or a tuple or
    list of them -- written as a tuple); ConfigError for anything else."""
    if value is None:
        return 'None'
    if isinstance(value, bool):
        return 'True' if value else 'False'
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError('%s cannot be written into a script as a constant'
                              % float.__repr__(value))
        return float.__repr__(value)
    if isinstance(value, str):
        return str.__repr__(value)
    if isinstance(value, (tuple, list)):
        items = [literal(item) for item in value]
        return '(%s)' % (', '.join(items) + (',' if len(items) == 1 else ''))
    raise ConfigError('a %s (%s) cannot be written into a script as a constant'
                      % (type(value).__name__, printable(repr(value))[:80]))


def sql_node(text):
    """``SQL(...)`` of ``text`` for a script, where ``db`` is the database. psycopg2 and PyMySQL
    read ``%`` in a statement as a placeholder even without parameters (``%%`` is one ``%``);
    sqlite3 does not: text with a ``%`` (``DEFAULT '100%'``) is written for both."""
    if '%' not in text:
        return 'SQL(%s)' % literal(text)
    return 'SQL(%s if db.param == %s else %s)' % (literal(text), literal('?'),
                                                   literal(text.replace('%', '%%')))


def is_identifier(name):
    """Whether ``name`` can be written as a Python name and read back as itself."""
    return (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)
            and unicodedata.normalize('NFKC', name) == name)


def docstring(text):
    """The docstring literal (``\"\"\"...\\n\"\"\"``) whose value is ``shown(text)``."""
    body = shown(text)
    return '"""%s"""' % body.replace('\\', '\\\\').replace('"', '\\"')


def shown(text):
    """What ``docstring(text)`` reads back as: each line printable, and a final newline."""
    return '\n'.join(printable(line) for line in text.strip().split('\n')) + '\n'


def _problem(text):
    if '\x00' in text:
        return ('contains NUL (\\x00), which PostgreSQL cannot store in text; modelstore '
                'refuses it on every backend')
    try:
        text.encode('utf-8')
    except UnicodeEncodeError as exc:
        return ('contains an unpaired surrogate (%s at %d), which is not UTF-8 and no database '
                'can store' % (printable(exc.object[exc.start]), exc.start))
    return None


def check_text(where, what, text):
    """ConfigError naming ``where`` and ``what`` if ``text`` cannot be stored by a database."""
    problem = _problem(text) if isinstance(text, str) else None
    if problem:
        raise ConfigError(printable('%s: %s %s; nothing was written' % (where, what, problem)))


def check_source(name, text, doc):
    """ScriptError unless ``text`` compiles and its docstring reads back as ``shown(doc)``."""
    try:
        tree = ast.parse(text, filename=name + '.py')
        compile(tree, name + '.py', 'exec')
    except (SyntaxError, ValueError) as exc:
        where = ' (line %s)' % exc.lineno if getattr(exc, 'lineno', None) else ''
        raise ScriptError(name, 'the generated script does not compile%s: %s; nothing was '
                                'written' % (where, printable(exc.msg if isinstance(
                                    exc, SyntaxError) else exc))) from None
    if ast.get_docstring(tree, clean=False) != shown(doc):
        raise ScriptError(name, 'a value ends the generated script\'s docstring early; nothing '
                                'was written')


# What _models(db)'s classes may not be called: a local class of such a name would hide the
# global (from peewee import *, a field class) from every class body before it.
_TAKEN = frozenset(peewee.__all__) | {'db', 'migrator', '_models', 'PostgresqlDatabase'}


def class_names(models):
    """{model: its class name in the script}: its own name where that is an identifier that no
    other class or imported name has, else that name (or ``Table``) with a number."""
    taken = set(_TAKEN) | {type(f).__name__ for m in models for f in m._meta.sorted_fields}
    names = {}
    for model in models:
        base = model.__name__ if is_identifier(model.__name__) else 'Table'
        name, number = base, 1
        while name in taken:
            number += 1
            name = '%s_%d' % (base, number)
        taken.add(name)
        names[model] = name
    return names


def check_attributes(table, assigned):
    """ConfigError unless each ``(field name, expression)`` of a class body, in order, can be
    written as that attribute without hiding a name a later expression uses (``CharField =
    IntegerField()`` before ``CharField(...)``)."""
    used = []
    for _, expression in assigned:
        try:
            used.append({node.id for node in ast.walk(ast.parse(expression, mode='eval'))
                         if isinstance(node, ast.Name)})
        except SyntaxError:
            used.append(set())  # check_source() reports it.
    for position, (name, _) in enumerate(assigned):
        hidden = any(name in names for names in used[position + 1:])
        if not is_identifier(name) or hidden or name == 'Meta':
            raise ConfigError('%s: the field %s cannot be declared in a script\'s model class '
                              '(%s); rename the field (column_name=... keeps its column)'
                              % (printable(table), printable(repr(name)),
                                 'the script uses that name' if is_identifier(name) else
                                 'not a Python identifier'))
