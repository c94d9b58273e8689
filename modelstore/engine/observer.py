"""What a run tells whoever watches it: one ``Observer``, its methods called as the run goes.

Every method does nothing here; a caller overrides the ones it wants. ``Engine.migrate``,
``rollback`` and ``repair`` take one (``observer=``) or the older keyword callbacks
(``on_script``, ``on_backup``, ``on_progress``, ``on_wait``), which ``Callbacks`` adapts.
"""

__all__ = ['Observer', 'Callbacks', 'observing']


class Observer:
    """The events of one run, in the order they happen."""

    def backup(self, backup):
        """SQLite: the database was copied (a modelstore.engine.backup.Backup) before the run
        changed anything."""

    def script_started(self, script):
        """``migrate``/``rollback``: ``script`` (a modelstore.engine.scripts.Script) starts."""

    def progress(self, progress):
        """An online script committed a batch (a modelstore.engine.batch_runner.Progress)."""

    def lock_wait(self, wait):
        """A script timed out waiting for a lock and is tried again after ``wait.delay``
        (a modelstore.engine.ddlwait.LockWait)."""

    def script_finished(self, result):
        """A script is done and committed: a ScriptRun (``migrate``, ``rollback``), or
        ``repair``'s (name, direction, action, steps)."""


class Callbacks(Observer):
    """The keyword callbacks as an Observer, after ``inner``'s own methods (if any)."""

    def __init__(self, inner=None, *, on_script=None, on_backup=None, on_progress=None,
                 on_wait=None):
        self.inner = inner if inner is not None else Observer()
        self.on_script, self.on_backup = on_script, on_backup
        self.on_progress, self.on_wait = on_progress, on_wait

    def backup(self, backup):
        self.inner.backup(backup)
        if self.on_backup is not None:
            self.on_backup(backup)

    def script_started(self, script):
        self.inner.script_started(script)

    def progress(self, progress):
        self.inner.progress(progress)
        if self.on_progress is not None:
            self.on_progress(progress)

    def lock_wait(self, wait):
        self.inner.lock_wait(wait)
        if self.on_wait is not None:
            self.on_wait(wait)

    def script_finished(self, result):
        self.inner.script_finished(result)
        if self.on_script is not None:
            self.on_script(result)


def observing(observer=None, **callbacks):
    """One Observer from ``observer`` and the keyword callbacks given (None ones ignored)."""
    if not any(callback is not None for callback in callbacks.values()):
        return observer if observer is not None else Observer()
    return Callbacks(observer, **callbacks)
