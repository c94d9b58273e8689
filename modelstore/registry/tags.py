"""Tags (0016): string key/value pairs on a model version, set, removed and filtered on.

One value per key and model. ``set_tags`` adds or changes keys, ``delete_tags`` removes them;
each call is one event (``tags.changed``, the model's tags before and after) in its own
transaction, taken under the event lock like every registry change. ``list_models(tags=...)``
keeps the models carrying every pair given (modelstore.registry.fastpath walks the (key, value,
creation_date, model_id) index: each tag row holds its model's creation_date, copied here when
the tag is set and again when update_model changes the date).
"""
from ..exceptions import NotFound, ValidationError
from .validate import check_id

__all__ = ['Tags']

class Tags:
    def __init__(self, tag_model, model_model, calls, events):
        self.Tag = tag_model
        self.Model = model_model
        self._run = calls.run
        self.events = events

    def of(self, model_ids):
        """{model id: {key: value}} of these models (in the caller's transaction)."""
        T = self.Tag
        found = {}
        for model_id, key, value in (T.select(T.model_id, T.key, T.value)
                                     .where(T.model_id.in_(list(model_ids)))
                                     .order_by(T.model_id, T.key).tuples()):
            found.setdefault(model_id, {})[key] = value
        return found

    def get(self, model_id):
        check_id('model_id', model_id)
        M = self.Model

        def read():
            if not M.select().where(M.id == model_id).exists():
                raise NotFound('no fine-tuned model with id %d' % model_id)
            return self.of([model_id]).get(model_id, {})
        return self._run('get_tags', read)

    def change(self, model_id, tags=None, remove=()):
        """Set ``tags`` (a checked dict) or remove the keys ``remove``; returns the tags."""
        check_id('model_id', model_id)
        T, M = self.Tag, self.Model

        def change():
            seq = self.events.lock()
            row = M.select(M.model_name, M.version).where(M.id == model_id).first()
            if row is None:
                raise NotFound('no fine-tuned model with id %d' % model_id)
            before = self.of([model_id]).get(model_id, {})
            missing = [key for key in remove if key not in before]
            if missing:
                raise NotFound('model %d has no tag %s (its tags: %s)' % (
                    model_id, ', '.join(map(repr, missing)), ', '.join(sorted(before)) or
                    'none'))
            if set(remove) & set(tags or {}):
                raise ValidationError('remove', 'names a key that is also set: %s'
                                      % ', '.join(sorted(set(remove) & set(tags))))
            after = dict(before, **(tags or {}))
            for key in remove:
                del after[key]
            if after == before:
                return after, None
            for key in remove:
                T.delete().where((T.model_id == model_id) & (T.key == key)).execute()
            for key, value in (tags or {}).items():
                if key not in before:  # With its model's creation_date, as stored there.
                    T.insert(model_id=model_id, key=key, value=value,
                             creation_date=M.select(M.creation_date).where(
                                 M.id == model_id)).execute()
                elif before[key] != value:
                    T.update(value=value).where((T.model_id == model_id) &
                                                (T.key == key)).execute()
            event = self.events.record(seq, 'tags.changed', model_name=row.model_name,
                                       model_id=model_id, version=row.version, before=before,
                                       after=after)
            return after, event
        after, event = self._run('set_tags' if tags is not None else 'delete_tags', change,
                                 write=True)
        if event is not None:
            self.events.notify([event])
        return after

    def follow_date(self, model_id):
        """update_model changed the model's creation_date: its tags' copy follows (in the
        update's transaction), so the listing's index stays in its order."""
        T, M = self.Tag, self.Model
        T.update(creation_date=M.select(M.creation_date).where(M.id == model_id)).where(
            T.model_id == model_id).execute()

    def forget(self, model_id):
        """A deleted model's tags go with it (in the delete's transaction)."""
        T = self.Tag
        T.delete().where(T.model_id == model_id).execute()
