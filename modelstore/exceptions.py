"""Every error modelstore raises derives from ModelStoreError.

Subclasses carry the data a caller needs to act (pending names, the command to run, the script
that failed) so that the CLI can print one line and a pipeline can branch on the class.
"""


def one_line(exc):
    """An error's message on one line (its class name if it has none)."""
    return ' '.join(str(exc).split()) or type(exc).__name__


def shown_value(value, limit=80):
    """``repr(value)``, cut to ``limit`` characters, for messages about stored values."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


class ModelStoreError(Exception):
    """Base class of every modelstore error."""


class ConfigError(ModelStoreError):
    """The database URL, file or settings are unusable (says which and why)."""


class UsageError(ModelStoreError):
    """The command line itself is wrong (an unknown option, a missing argument)."""


class ValidationError(ModelStoreError, ValueError):
    """A value passed to the registry API was rejected; nothing was written."""

    def __init__(self, field, message):
        self.field = field
        self.message = message
        super().__init__('%s: %s' % (field, message) if field else message)


class NotFound(ModelStoreError, LookupError):
    """No row with the given id or name."""


class StorageError(ModelStoreError):
    """The database failed a registry call (locked past the timeout, disk full, ...)."""


class OutcomeUnknown(StorageError):
    """The connection to the server was lost while a change was being committed: it may or may
    not be stored. Never retried by modelstore (a retry could store it twice); look before
    writing it again."""

    def __init__(self, what):
        self.what = what
        super().__init__('%s: the connection to the database was lost while committing, so '
                         'whether the change was stored is unknown; check before retrying'
                         % what)


class FilesLeft(StorageError):
    """A model's row was deleted and its folder moved to the trash, but some of what it held
    could not be removed: ``left`` lists each thing left, ``'<path>: <why>'``, and ``entry`` is
    the trash entry holding it (``modelstore doctor --empty-trash`` tries again)."""

    def __init__(self, what, entry, left):
        self.entry = entry
        self.left = list(left)
        shown = '; '.join(self.left[:5]) + ('; ... %d more' % (len(self.left) - 5)
                                             if len(self.left) > 5 else '')
        super().__init__('%s, but %d %s could not be removed and %s still in the trash %s: %s '
                         '(modelstore doctor --empty-trash tries again)' % (
                             what, len(self.left), 'thing' if len(self.left) == 1 else 'things',
                             'is' if len(self.left) == 1 else 'are', entry, shown))


class UnreadableValue(StorageError):
    """A stored value cannot be read as its column's type (text edited by hand into a SQLite
    file, an enum name this code does not know). Names the table, the row and the column, so
    that the row can be fixed; it is never handed back as a value of another type."""

    def __init__(self, table, column, value, expected, row_ids=()):
        self.table = table
        self.column = column
        self.value = value
        self.expected = expected
        self.row_ids = list(row_ids)
        rows = ('row%s %s' % ('s' if len(self.row_ids) > 1 else '',
                              ', '.join(map(str, self.row_ids)))
                if self.row_ids else 'a row')
        super().__init__('%s %s: column %s holds %s, which is not %s; fix the row (the registry '
                         'cannot read it)' % (table, rows, column, shown_value(value),
                                              expected))

    def at(self, row_ids):
        """The same error, naming the rows that hold the value."""
        return UnreadableValue(self.table, self.column, self.value, self.expected, row_ids)


class MigrationError(ModelStoreError):
    """A migration run was refused or failed; the database is as before the failing script."""


class ScriptError(MigrationError):
    """A migration script could not be loaded or raised while running."""

    def __init__(self, name, message):
        self.name = name
        super().__init__('%s: %s' % (name, message))


class ScriptBlocked(ScriptError):
    """PostgreSQL: a script could not take its locks within its tries (each ended by
    ``lock_timeout``, so that writers never queue behind it) and was rolled back. ``blockers``:
    the sessions that held them (pid, state, seconds, tables, query)."""

    def __init__(self, name, attempts, timeout, seconds, described, blockers):
        self.blockers = list(blockers)
        pids = ', '.join(str(b['pid']) for b in self.blockers)
        super().__init__(name, 'gave up taking its locks after %d attempts (lock_timeout %g s '
                               'each, %.0f s in all) and was rolled back, so that the writers '
                               'waiting behind it could go on. Blocking: %s. End %s, or allow '
                               'more tries (--ddl-retries), and run migrate again'
                         % (attempts, timeout, seconds, '; '.join(described) or
                            'no session holds a lock on the schema\'s tables now',
                            'that transaction (SELECT pg_terminate_backend(%s))' % pids
                            if self.blockers else 'the long transactions'))


class ScriptFailedPartway(ScriptError):
    """MySQL/MariaDB: a script failed (or its run died) after some of its operations had
    completed. DDL commits there, so they stay applied; the history row says ``failed`` and
    lists them. ``migrate`` refuses to go on until ``modelstore repair`` has reverted them (or
    recorded a manual fix). ``completed``: the descriptions of the operations that completed."""

    def __init__(self, name, message, completed=()):
        self.completed = list(completed)
        super().__init__(name, message)


class ChecksumMismatch(MigrationError):
    """Applied scripts were edited after they ran; `modelstore accept NAME` records the new
    text."""

    def __init__(self, names, command='modelstore accept NAME'):
        self.names = list(names)
        self.command = command
        super().__init__(
            'applied migration script%s changed since %s ran: %s. Review the change, then run '
            '`%s` to record the new checksum.'
            % ('s' if len(self.names) > 1 else '', 'they' if len(self.names) > 1 else 'it',
               ', '.join(self.names), command))


class ClientsAlive(MigrationError):
    """A contract script would run while clients built for an earlier schema are alive
    (modelstore.engine.clients): they may still read or write what it drops. ``clients``: the
    ClientRows; ``scripts``: the contract scripts refused."""

    def __init__(self, url, scripts, clients, command):
        self.url = url
        self.scripts = list(scripts)
        self.clients = list(clients)
        many = len(self.clients) > 1
        super().__init__(
            'refusing to run the contract script%s %s on %s: %d client%s built for an earlier '
            'schema %s alive: %s. Stop %s (a client counts as gone %d s after it was last '
            'seen), or override with `%s`, which the history records. Nothing was changed.'
            % ('s' if len(self.scripts) > 1 else '', ', '.join(self.scripts), url,
               len(self.clients), 's' if many else '', 'are' if many else 'is',
               '; '.join(c.describe() for c in self.clients), 'them' if many else 'it',
               self.clients[0].life if self.clients else 0, command))


class LockTimeout(MigrationError):
    """Another process held the migration lock for longer than the timeout."""


class SchemaOutOfDate(ModelStoreError):
    """The database is behind the code: scripts are pending. `command` fixes it."""

    def __init__(self, url, pending, command, reason=None):
        self.url = url
        self.pending = list(pending)
        self.command = command
        self.reason = reason  # Set when the database holds no registry at all (others' tables).
        super().__init__(
            'database %s is behind this code%s: %d pending migration script%s (%s). '
            'Run: %s' % (url, ' (%s)' % reason if reason else '', len(self.pending),
                         '' if len(self.pending) == 1 else 's', ', '.join(self.pending),
                         command))


class SchemaNewerThanCode(ModelStoreError):
    """The history names scripts that the scripts directory does not hold: another set of
    scripts migrated the database (a project's own ``--migrations`` directory), or newer code
    did. ``directory``: where the scripts were looked for (None: those shipped with
    modelstore). ``contract``: the unknown scripts are a newer release's contract scripts (or
    of unknown phase), so this code cannot know what the schema now refuses. ``running``: a
    store that was open already found them (its heartbeat, or a write that failed): it is
    read-only from then on."""

    def __init__(self, url, unknown, directory=None, contract=False, running=False):
        self.url = url
        self.unknown = list(unknown)
        self.directory = directory
        self.contract = contract or running
        self.running = running
        many = len(self.unknown) > 1
        names = ', '.join(self.unknown)
        if running:
            message = (
                'database %s: a newer release applied the contract script%s %s while this '
                'store was open; this code cannot know what the schema refuses now, so the '
                'store only reads from now on, and this write was not made. Restart this '
                'process on the release that ships %s.'
                % (url, 's' if many else '', names, 'them' if many else 'it'))
        elif self.contract:
            message = (
                'database %s has applied %s of a newer release not known to be expand '
                '(%s): this code cannot know what the schema refuses now, so it only reads '
                'there (connect(..., allow_newer=True) opens it so). Writing takes the '
                'release that ships %s. Nothing was changed.'
                % (url, 'scripts' if many else 'a script', names, 'them' if many else 'it'))
        else:
            where = ('the scripts directory %s does' % directory if directory is not None
                     else 'the scripts shipped with modelstore do')
            message = (
                'database %s has applied %s that %s not hold (%s): another set of '
                'scripts migrated it, or newer code did. If a project\'s own scripts did, use '
                'that directory (--migrations DIR, or migrations in [tool.modelstore]); if '
                'newer code did, update this one. Nothing was changed.'
                % (url, 'scripts' if many else 'a script', where, names))
        super().__init__(message)


class AdoptionRefused(MigrationError):
    """A table has a shape no migration script produces; nothing was changed."""

    def __init__(self, url, problems, command='modelstore migrate --fake'):
        self.url = url
        self.problems = list(problems)
        self.command = command
        super().__init__(
            'cannot adopt %s: a table does not match any state the migration scripts produce, '
            'so nothing was changed' % url)

    def report(self):
        """The message followed by one line per difference."""
        return '\n'.join([str(self)] + ['  ' + line for line in self.problems] + [
            'Fix the table by hand, or, if you are sure it already holds the scripts\' effect, '
            'record them without running: %s' % self.command])


class DataLossRefused(MigrationError):
    """A rollback (or a repair) would drop a table holding rows or a column holding values;
    nothing changed."""

    def __init__(self, url, losses, action='roll back',
                 override='Engine.rollback(allow_data_loss=True)',
                 backup='; on SQLite a backup is taken first'):
        self.url = url
        self.losses = list(losses)
        self.action = action
        self._backup = backup
        super().__init__(
            'refusing to %s %s: it would destroy %s. Nothing was changed. Run again with --yes '
            '(%s) to proceed%s.' % (action, url, '; '.join(self.losses), override, backup))

    def report(self):
        """The refusal with one line per loss."""
        return '\n'.join(['refusing to %s %s: it would destroy:' % (self.action, self.url)]
                         + ['  ' + line for line in self.losses]
                         + ['Nothing was changed. Run again with --yes to proceed%s.'
                            % self._backup])
