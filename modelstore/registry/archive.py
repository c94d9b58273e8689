"""Archived models (0014): set aside without losing their number, and back.

``archived_at`` (UTC; NULL: not archived) leaves a model out of list_models, count_models and
get_latest_model unless asked for (modelstore.registry.validate's ``archived`` filter); it still
resolves by id and NAME@VERSION. Archiving is refused while an alias points at the model (an
archived model would serve), and each change is an event (modelstore.registry.events).
"""
from ..exceptions import NotFound
from .events import utc_now
from .validate import check_id

__all__ = ['Archive']


class Archive:
    def __init__(self, model, calls, events, aliases):
        self.Model = model
        self._run = calls.run
        self.events = events
        self.aliases = aliases

    def change(self, model_id, archive):
        """Archive (``archive``) or restore model ``model_id``; returns it."""
        check_id('model_id', model_id)
        M = self.Model

        def change():
            seq = self.events.lock()  # First, as set_alias: an alias set meanwhile is seen.
            row = M.get_or_none(M.id == model_id)
            if row is None:
                raise NotFound('no fine-tuned model with id %d' % model_id)
            if (row.archived_at is not None) == archive:
                return row, None  # Already so: nothing to record.
            if archive:
                self.aliases.refuse_if_held(model_id, 'archive')
            when = utc_now() if archive else None
            M.update(archived_at=when).where(M.id == model_id).execute()
            before, row.archived_at = row.archived_at, when
            event = self.events.record(
                seq, 'model.archived' if archive else 'model.restored',
                model_name=row.model_name, model_id=model_id, version=row.version,
                before={'archived_at': before and before.isoformat()},
                after={'archived_at': when and when.isoformat()})
            return row, event
        row, event = self._run('archive_model' if archive else 'restore_model', change,
                               write=True)
        if event is not None:
            self.events.notify([event])
        return row
