"""A Plan as script text: plain playhouse.migrations scripts that also run under ``pwmigrate``.

Two scripts when a change needs both: the schema changes in one transactional script, the index
builds on existing tables in a second one marked ``atomic = False`` (as 0005 is), so on
PostgreSQL they are built ``CONCURRENTLY`` while writers keep writing, and a run that dies
mid-build leaves the first script committed and the second safe to run again.

What the scripts hold, and why:

* New tables are frozen model classes declared inside the script (``_models(db)``), never an
  import of the application's models: the script must build the same tables forever. A table
  that an existing one refers to is a stub (its name and key only).
* A field is written as the peewee class that stores it (an ``EnumNameField`` as the
  ``CharField`` it is in the database), unless its class changes the DDL itself
  (``modelstore.fields.AutoIncrementField``); then the class is imported from its module, as
  0001 does.
* A NOT NULL column carries its constant as a database DEFAULT and is added with
  ``allow_not_null=True``: one ``ADD COLUMN ... NOT NULL DEFAULT <constant>``, O(1) at any table
  size, and writers that omit the column still insert. Never peewee's add / UPDATE / SET NOT NULL.
* ``down()`` undoes every operation, in reverse order.
* A script with TODO items starts ``up()`` with a ``raise``: it cannot be applied by accident
  before a person has resolved them.
"""
import enum
import math
import textwrap

from peewee import (AutoField, CompositeKey, DecimalField, Field, ForeignKeyField,
                    ModelIndex)

from ..exceptions import ConfigError
from .plan import sql_text
from .pysource import (check_attributes, check_source, class_names, docstring, is_identifier,
                       literal, printable, sql_node)

__all__ = ['render']

_CORE = ('peewee', 'playhouse.')
_DDL_HOOKS = ('ddl', 'ddl_datatype', 'get_modifiers')


def _is_core(cls):
    return cls.__module__ == 'peewee' or cls.__module__.startswith(_CORE[1])


class _Source:
    """Collects the imports and TODOs while fields are written."""

    def __init__(self, models_module):
        self.models_module = models_module
        self.imports = set()
        self.todos = []
        self.names = {}  # model class -> its class name in the script

    def field_class(self, fld):
        cls = type(fld)
        core = next(c for c in cls.__mro__ if _is_core(c))
        between = cls.__mro__[:cls.__mro__.index(core)]
        if core.field_type == cls.field_type and not any(
                hook in vars(c) for c in between for hook in _DDL_HOOKS):
            cls = core  # Stored exactly as the core class stores it.
        if cls.__module__ == 'peewee':
            return cls.__name__
        if cls.__module__ in ('__main__', self.models_module):
            self.todos.append('%s.%s: its field class %s is defined in the models module and '
                              'changes the DDL; copy it into this script'
                              % (fld.model._meta.table_name, fld.column_name, cls.__name__))
            return core.__name__
        if not is_identifier(cls.__name__) or not all(
                map(is_identifier, cls.__module__.split('.'))):
            raise ConfigError('%s: its field class %s cannot be imported by name in a script'
                              % (_where(fld), printable(cls.__module__ + '.' + cls.__name__)))
        self.imports.add('from %s import %s' % (cls.__module__, cls.__name__))
        return cls.__name__

    def field(self, fld, *, column=False, default_sql=None):
        """``Class(args)`` for ``fld``. ``column``: for add_column (its index is built apart,
        its name is add_column's argument); ``default_sql``: the DEFAULT it must carry."""
        fk = isinstance(fld, ForeignKeyField)
        args = (self._reference(fld, column) if fk else []) + _key_args(fld, column, fk)
        args += _storage_args(fld)
        if not column and fld.column_name != _default_column(fld):
            args.append('column_name=%s' % literal(fld.column_name))
        default = _constant(fld)
        if default is not None:
            args.append('default=%s' % default)
        args += self._constraints(fld, default_sql)
        return '%s(%s)' % (self.field_class(fld), ', '.join(args))

    def _reference(self, fld, column):
        """A foreign key's target model, field and actions."""
        target = "'self'" if fld.rel_model is fld.model and not column \
            else self.names[fld.rel_model]
        return [target, 'field=%s' % literal(fld.rel_field.name)] + [
            '%s=%s' % (action, literal(getattr(fld, action)))
            for action in ('on_delete', 'on_update') if getattr(fld, action)]

    def _constraints(self, fld, default_sql):
        """constraints=[...]: the field's SQL(...) ones (a TODO for any other), and the
        DEFAULT it must carry unless one of them is a DEFAULT already."""
        constraints = [sql_text(c) for c in fld.constraints or ()]
        if None in constraints:
            self.todos.append('%s.%s: a constraint that is not SQL(...) text; copy it by hand'
                              % (fld.model._meta.table_name, fld.column_name))
        constraints = [c for c in constraints if c is not None]
        if default_sql is not None and not any(
                c.strip().upper().startswith('DEFAULT') for c in constraints):
            constraints.append('DEFAULT %s' % default_sql)
        return ['constraints=[%s]' % ', '.join(map(sql_node, constraints))] if constraints else []


def _key_args(fld, column, fk):
    """primary_key=, and unique= or index= where it differs from peewee's default (a foreign
    key is indexed); an added column's index is built by the index script instead."""
    args = ['primary_key=True'] if fld.primary_key and not isinstance(fld, AutoField) else []
    if fld.unique and not column:
        return args + ['unique=True']
    index = bool(fld.index) and not column
    return args + (['index=%s' % index] if index != fk else [])


def _storage_args(fld):
    """null=, the type's size and the attributes that shape the column."""
    args = ['null=True'] if fld.null else []
    if getattr(fld, 'max_length', None) is not None:  # CharField's, and the DDL-changing
        args.append('max_length=%s' % literal(fld.max_length))  # KeyTextField's on MySQL.
    if isinstance(fld, DecimalField):
        args.append('max_digits=%s, decimal_places=%s' % (literal(fld.max_digits),
                                                         literal(fld.decimal_places)))
    return args + ['%s=%s' % (attribute, literal(getattr(fld, attribute)))
                   for attribute in ('collation', 'sequence', 'index_type')
                   if getattr(fld, attribute, None)]


def _where(fld):
    return printable('%s.%s' % (fld.model._meta.table_name, fld.column_name))


def _default_column(fld):
    if isinstance(fld, ForeignKeyField):
        return fld.name if fld.name.endswith('_id') else fld.name + '_id'
    return fld.name


def _constant(fld):
    """Python source of the field's constant default (an enum as the value it is stored as),
    or None for callables and other values."""
    value = fld.default
    if isinstance(value, enum.Enum):
        value = fld.db_value(value) if hasattr(fld, 'enum_class') else value.value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (bool, int, float, str)):
        return literal(value)
    return None


def _model_lines(src, model, stub):
    meta = model._meta
    assigned = [(fld.name, _stub_key(fld) if stub and isinstance(fld, ForeignKeyField)
                 else src.field(fld))
                for fld in ([meta.primary_key] if stub else meta.sorted_fields)
                if not _implicit_key(fld, stub)]
    check_attributes(meta.table_name, assigned)
    lines = ['    class %s(Model):' % src.names[model]]
    lines += ['        %s = %s' % pair for pair in assigned] + ([''] if assigned else [])
    lines += ['        class Meta:', '            database = db',
              '            table_name = %s' % literal(meta.table_name)]
    return lines + ([] if stub else _meta_options(src, meta))


def _implicit_key(fld, stub):
    """peewee's implicit key (a stub's key is only referred to): not written."""
    return fld.name == 'id' and fld.column_name == 'id' and (
        type(fld) is AutoField or (stub and isinstance(fld, AutoField)))


def _stub_key(fld):
    return 'IntegerField(primary_key=True, column_name=%s)' % literal(fld.column_name)


def _meta_options(src, meta):
    """The Meta lines after table_name: the plain indexes (a TODO for any other), the key."""
    plain = []
    for index in meta.indexes or ():
        pair = _plain_index(index)
        if pair is None:
            src.todos.append('%s: index %s is not a (columns, unique) pair; add it by hand'
                             % (meta.table_name, getattr(index, '_name', index)))
        else:
            plain.append(pair)
    lines = ['            indexes = %s' % literal(tuple(plain))] if plain else []
    if isinstance(meta.primary_key, CompositeKey):
        lines.append('            primary_key = CompositeKey(%s)'
                     % ', '.join(literal(name) for name in meta.primary_key.field_names))
    elif not meta.primary_key:
        lines.append('            primary_key = False')
    return lines


def _plain_index(index):
    """(columns, unique) of an index declared plainly; None for any other."""
    if isinstance(index, (list, tuple)):
        return tuple(index[0]), bool(index[1])
    if isinstance(index, ModelIndex) and index._where is None and all(
            isinstance(part, Field) for part in index._expressions):
        # Model.add_index(Model.a, Model.b): a plain index in peewee's own terms.
        return tuple(part.name for part in index._expressions), bool(index._unique)
    return None


def _frozen(src, plan):
    """Lines of ``_models(db)``, and the class names it returns (created, then stubs)."""
    created = list(plan.create)
    fields = [f for m in created for f in m._meta.sorted_fields] + [
        c.field for c in plan.add_columns]
    referred = list(dict.fromkeys(f.rel_model for f in fields if isinstance(
        f, ForeignKeyField) and f.rel_model not in created))
    if not created and not referred:
        return [], []
    classes = referred + created
    src.names.update(class_names(classes))
    lines = ['def _models(db):',
             '    """Frozen copies of the tables this script creates%s, as they are here."""'
             % (' or refers to' if referred else '')]
    for model in classes:
        if model in referred:
            lines.append('    # %s exists already; declared for its foreign keys only.'
                         % printable(model._meta.table_name))
        lines += _model_lines(src, model, stub=model in referred) + ['']
    names = [src.names[m] for m in classes]
    lines.append('    return %s' % ', '.join(names) + (',' if len(classes) == 1 else ''))
    return lines, names


def _block(name, lines):
    body = ['    ' + line if line else '' for line in lines] or ['    pass']
    return ['def %s(migrator, db):' % name] + body


def _wrapped(head, *parts, width=88):
    """``head`` and ``parts`` on one line, or when that is long, each part on a continuation
    line aligned after ``head``'s "(" (the parts joined while they fit)."""
    if len(head) + sum(map(len, parts)) <= width:
        return head + ''.join(parts)
    indent = ' ' * (head.index('(') + 1)
    lines = [head.rstrip()]
    current = indent
    for part in parts:
        if current.strip() and len(current) + len(part) > width:
            lines.append(current.rstrip() + (',' if part.startswith(',') else ''))
            current = indent
            part = part.lstrip(', ')
        current += part
    return '\n'.join(lines + [current])


def _ops(items):
    """``migrator.migrate(...)`` of the operations (each may span lines)."""
    if not items:
        return []
    if len(items) == 1 and '\n' not in items[0]:
        return ['migrator.migrate(%s)' % items[0]]
    lines = ['migrator.migrate(']
    for item in items:
        lines += ['    ' + line for line in (item + ',').split('\n')]
    return lines + [')']


def _schema_script(plan, docstring, src, name):
    """The transactional script's text, and its TODO items: the plan's and those its fields
    raised while written."""
    frozen, classes = _frozen(src, plan)
    up, down = [], []
    if classes:
        up.append('%s%s = _models(db)' % (', '.join(classes), ',' if len(classes) == 1 else ''))
    if plan.create:
        up.append('db.create_tables([%s], safe=False)'
                  % ', '.join(src.names[m] for m in plan.create))
    adds = [_wrapped('migrator.add_column(%s, %s, ' % (literal(a.table),
                                                        literal(a.field.column_name)),
                     src.field(a.field, column=True, default_sql=a.default_sql),
                     ', allow_not_null=True)' if a.default_sql is not None else ')')
            for a in plan.add_columns]
    up += _ops(adds)
    up += _ops(['migrator.drop_not_null(%s, %s)' % tuple(map(literal, tc))
                for tc in plan.drop_not_null])
    drops = _ops(['migrator.drop_index(%s, %s)' % (literal(i.table), literal(i.name))
                  for d in plan.drop_columns for i in d.indexes])
    if drops:  # SQLite refuses to drop an indexed column; MySQL would shrink the index.
        up += ['if not isinstance(db, PostgresqlDatabase):  # Its DROP COLUMN drops them.'] + \
            ['    ' + line for line in drops]
    up += _ops(['migrator.rename_column(%s, %s, %s)' % tuple(map(literal, (r.table, r.old, r.new)))
                for r in plan.renames] +
               ['migrator.drop_column(%s, %s)' % (literal(d.table), literal(d.column))
                for d in plan.drop_columns])
    if plan.drop_columns:
        down.append('# The dropped columns come back empty: their values are gone.')
    # The renames go back first: an index built again below may span a renamed column.
    down += _ops(['migrator.rename_column(%s, %s, %s)' % tuple(map(literal, (r.table, r.new,
                                                                              r.old)))
                  for r in reversed(plan.renames)] +
                 [op for d in reversed(plan.drop_columns) for op in
                  [_wrapped('migrator.add_column(%s, %s, ' % (literal(d.table),
                                                               literal(d.column)),
                            src.field(d.field, column=True), ')')] +
                  [_wrapped('migrator.add_index(%s, ' % literal(i.table),
                            '%s, %s, ' % (literal(i.columns), literal(i.unique)),
                            'name=%s)' % literal(i.name)) for i in d.indexes]])
    down += _ops(['migrator.add_not_null(%s, %s)' % tuple(map(literal, tc))
                  for tc in reversed(plan.drop_not_null)])
    down += _ops(['migrator.drop_column(%s, %s)' % (literal(a.table),
                                                    literal(a.field.column_name))
                  for a in reversed(plan.add_columns)])
    down += _ops(['migrator.drop_table(%s)' % literal(m._meta.table_name)
                  for m in reversed(plan.create)])
    todos = plan.todos + src.todos
    if todos:
        guard = 'raise NotImplementedError(%s)' % literal('%s has TODO items to resolve by hand'
                                                          % name)
        up = ['# Remove this line once every TODO above is resolved:', guard] + up
    body = _phase(plan.phase) + frozen + ([''] if frozen else []) + [''] + _block('up', up) + \
        ['', ''] + _block('down', down)
    return _file(docstring, src, todos, body), todos


def _phase(phase):
    """The script's phase, declared (docs/rolling-upgrades.md)."""
    why = ('additive: the previous release keeps working beside it' if phase == 'expand' else
           'run once the previous release is gone: migrate --phase contract')
    return ['phase = %s  # %s' % (literal(phase), why), '']


_INDEX_HELPERS = '''
def _quoted(name):
    return '"%s"' % name.replace('"', '""')


def _create(migrator, db, table, name, columns, unique):
    if isinstance(db, PostgresqlDatabase) and not db.in_transaction():
        # CONCURRENTLY: writers keep writing while it builds. A build that died leaves an
        # INVALID index under the name; drop it and build again. Each index is built once:
        # a run that died after some of them builds the rest.
        invalid = db.execute_sql(
            'SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid '
            'WHERE c.relname = %s AND NOT i.indisvalid', (name,)).fetchone()
        if invalid:
            db.execute_sql('DROP INDEX CONCURRENTLY IF EXISTS %s' % _quoted(name))
        db.execute_sql('CREATE %sINDEX CONCURRENTLY IF NOT EXISTS %s ON %s (%s)' % (
            'UNIQUE ' if unique else '', _quoted(name), _quoted(table),
            ', '.join(map(_quoted, columns))))
    elif name not in [index.name for index in db.get_indexes(table)]:
        migrator.migrate(migrator.add_index(table, columns, unique, name=name))


def _drop(migrator, db, table, name):
    if isinstance(db, PostgresqlDatabase) and not db.in_transaction():
        db.execute_sql('DROP INDEX CONCURRENTLY IF EXISTS %s' % _quoted(name))
    elif name in [index.name for index in db.get_indexes(table)]:
        migrator.migrate(migrator.drop_index(table, name))
'''.strip('\n').split('\n')


def _rows(name, indexes):
    if not indexes:
        return ['%s = []' % name]
    lines = ['%s = [' % name]
    for i in indexes:
        parts = tuple(map(literal, (i.table, i.name, i.columns, i.unique)))
        row = '    (%s, %s, %s, %s),' % parts
        if len(row) > 99:
            row = '    (%s, %s,\n     %s, %s),' % parts
        lines.append(row)
    return lines + [']']


def _index_script(plan, docstring, src):
    body = _phase('expand') + ['atomic = False', '', '# (table, index name, columns, unique)',
            *_rows('ADD', plan.add_indexes), *_rows('DROP', plan.drop_indexes),
            '', ''] + _INDEX_HELPERS + ['', '']
    up = ['for table, name, columns, unique in DROP:',
          '    _drop(migrator, db, table, name)',
          'for table, name, columns, unique in ADD:',
          '    _create(migrator, db, table, name, columns, unique)']
    down = ['for table, name, columns, unique in reversed(ADD):',
            '    _drop(migrator, db, table, name)',
            'for table, name, columns, unique in reversed(DROP):',
            '    _create(migrator, db, table, name, columns, unique)']
    src.imports.add('from peewee import PostgresqlDatabase')
    return _file(docstring, src, [], body + _block('up', up) + ['', ''] + _block('down', down),
                 star=False)


def _file(text, src, todos, body, star=True):
    head = [docstring(text)]
    imports = (['from peewee import *'] if star else []) + sorted(
        i for i in src.imports if not (star and i.startswith('from peewee import ')))
    lines = head + imports + ['']
    if todos:
        for todo in todos:
            lines += textwrap.wrap(printable(todo), 99, initial_indent='# TODO: ',
                                   subsequent_indent='#       ', break_on_hyphens=False)
        lines.append('')
    while body and not body[0]:
        body = body[1:]
    return '\n'.join(lines + [''] + body) + '\n'


def render(plan, names, docstrings, models_module=None):
    """``[(file name, text)]`` for ``plan``: ``names`` gives one or two script names (schema
    script first); ``docstrings`` the module docstring of each."""
    src = _Source(models_module)
    out = []
    if plan.schema_changes or plan.todos or not plan.index_changes:
        text, plan.todos[:] = _schema_script(plan, docstrings[0], src, names[0])
        out.append((names[0], text))
    if plan.index_changes:
        index_src = _Source(models_module)
        out.append((names[len(out)], _index_script(plan, docstrings[len(out)], index_src)))
    for (name, text), doc in zip(out, docstrings):
        check_source(name, text, doc)
    return out
