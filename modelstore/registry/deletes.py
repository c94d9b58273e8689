"""Deleting a model: its row, its event, its tags, and with ``files=True`` its folder.

The folder goes only if it is strictly inside the models root and no other row's folder is it,
holds it or is inside it (read twice: before, and again in the delete's transaction, for rows
added meanwhile). The crash-safe order -- folder to the trash, row deleted, trash emptied -- is
modelstore.registry.modelfiles' and .trash's; this module decides what may go.
"""
from ..exceptions import NotFound, StorageError, ValidationError
from .modelfiles import ENV_VAR as MODELS_ROOT_ENV
from .validate import check_id

__all__ = ['Deletes', 'require_root']


def require_root(models_root, what):
    """The checked models root (modelfiles.ModelsRoot), or ValidationError naming ``what``."""
    if models_root is None:
        raise ValidationError('models_root', '%s needs a models root: pass '
                              'connect(models_root=...) or set $%s' % (what, MODELS_ROOT_ENV))
    return models_root.check()


class Deletes:
    def __init__(self, model, calls, events, aliases, tags, models_root, get_model):
        self.Model = model
        self.calls = calls
        self.events = events
        self.aliases = aliases
        self.tags = tags
        self.models_root = models_root
        self.get_model = get_model

    def _run(self, what, body, **options):
        return self.calls.run(what, body, **options)

    def delete_model(self, model_id, files):
        """ModelStore.delete_model."""
        check_id('model_id', model_id)
        if not isinstance(files, bool):
            raise ValidationError('files', 'must be True or False, got %r' % (files,))
        M = self.Model
        if not files:
            def delete():
                event = self._delete_row(model_id, M.id == model_id)
                if event is None:
                    raise NotFound('no fine-tuned model with id %d' % model_id)
                return event
            self.events.notify([self._run('delete_model', delete, write=True)])
            return None
        root = require_root(self.models_root, 'delete_model(files=True)')
        path = self.get_model(model_id).model_path
        self._run('delete_model', lambda: self.aliases.refuse_if_held(model_id, 'delete'))
        parts = root.relative(path)
        seen = self._run('delete_model', lambda: self._sharing(root, model_id, parts, path))

        def delete_row():
            def delete():
                # Again, in the delete's transaction, for the rows added since (a pipeline
                # registering the folder again): the files then go back.
                # The event lock first: on MySQL (REPEATABLE READ) the first read fixes what
                # the transaction sees, and an alias set before the lock must be seen.
                seq = self.events.lock()
                self._sharing(root, model_id, parts, path, after=seen)
                event = self._delete_row(model_id, (M.id == model_id) & (M.model_path == path),
                                         seq)
                if event is not None:
                    return event
                if M.select().where(M.id == model_id).exists():
                    raise StorageError('delete_model: model %d changed while it was being '
                                       'deleted; nothing was deleted' % model_id)
                # Gone already (another delete of it): its files belong to no row, and go.
            event = self._run('delete_model', delete, write=True, retry=False)
            if event is not None:
                events.append(event)
        events = []
        removed = root.delete(model_id, path, delete_row)
        self.events.notify(events)
        return removed

    def _delete_row(self, model_id, where, seq=None):
        """Delete the row ``where`` selects (model ``model_id``) and record the event, in the
        caller's write transaction; None if there is no such row. Refused (ValidationError)
        while an alias points at it."""
        M = self.Model
        if seq is None:  # First, as set_alias: an alias set meanwhile is seen.
            seq = self.events.lock()
        row = M.select(M.model_name, M.version, M.model_path).where(where).get_or_none()
        if row is None:
            return None
        self.aliases.refuse_if_held(model_id, 'delete')
        M.delete().where(where).execute()
        self.tags.forget(model_id)
        return self.events.record(seq, 'model.deleted', model_name=row.model_name,
                                  model_id=model_id, version=row.version, before={
                                      'model_name': row.model_name, 'version': row.version,
                                      'model_path': row.model_path})

    def _sharing(self, root, model_id, parts, path, after=0):
        """ValidationError if another row's folder is the one at ``parts``, is inside it, or
        holds it, however spelled (ModelsRoot.sharing); else the highest id read. Every row's
        path (with an id above ``after``) is read: a link to the folder may be anywhere."""
        M = self.Model
        rows = list(M.select(M.id, M.model_path).where((M.id != model_id) & (M.id > after))
                    .order_by(M.id).tuples())
        sharing = root.sharing(parts, rows)
        if sharing:
            raise ValidationError('model_path', '%r is also the folder of %s, or holds or is '
                                  'inside it: deleting it would leave %s pointing at nothing; '
                                  'nothing was deleted' % (path, ', '.join(
                                      'model %d (%s)' % row for row in sharing[:5]),
                                      'them' if len(sharing) > 1 else 'it'))
        return max([after] + [i for i, _ in rows[-1:]])

    def empty_trash(self, dry_run):
        """ModelStore.empty_trash."""
        if not isinstance(dry_run, bool):
            raise ValidationError('dry_run', 'must be True or False, got %r' % (dry_run,))
        root = require_root(self.models_root, 'empty_trash')
        M = self.Model

        def row_exists(model_id, path):
            query = M.select().where((M.id == model_id) & (M.model_path == path))
            return self._run('empty_trash', query.exists)
        return root.recover(row_exists, dry_run=dry_run)
