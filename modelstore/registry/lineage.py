"""Lineage (0014): which registry model a model was fine-tuned from, walked and kept sound.

``parent_id`` names the model's parent. A parent must exist when it is given (add_model,
add_models, update_model), and update_model refuses a parent that would make a model its own
ancestor. ``walk`` follows the chain up; a parent deleted since ends it, and a loop made by hand
is reported, never followed forever.
"""
from ..exceptions import ValidationError

__all__ = ['Lineage', 'MAX_DEPTH']

MAX_DEPTH = 10000  # A longer chain is taken for a loop the walk cannot see (it would be one).


class Lineage:
    def __init__(self, model):
        self.Model = model

    def require(self, parent, child=None):
        """ValidationError unless model ``parent`` exists -- and, for ``child`` (an existing
        model getting this parent), unless ``child`` is not ``parent`` or one of its
        ancestors. In the caller's transaction."""
        M = self.Model
        if not M.select().where(M.id == parent).exists():
            raise ValidationError('parent_id', 'no model with id %d to be the parent' % parent)
        if child == parent:
            raise ValidationError('parent_id', 'model %d cannot be its own parent' % child)
        if child is not None:
            chain = [m.id for m in self.walk(parent, loops=False)]
            if child in chain:
                raise ValidationError('parent_id', 'model %d cannot be the parent of model %d: '
                                      'it descends from it (%s)' % (parent, child, ' <- '.join(
                                          map(str, chain[:chain.index(child) + 1]))))

    def last_id(self):
        M = self.Model
        return M.select(M.id).order_by(M.id.desc()).limit(1).scalar() or 0

    def require_parents_after(self, last):
        """add_models: every parent the rows numbered after ``last`` name existed before them
        (one of the rows just written as a parent could close a loop)."""
        M, P = self.Model, self.Model.alias('parent')
        orphan = (M.select(M.parent_id)
                  .where((M.id > last) & M.parent_id.is_null(False) &
                         ((M.parent_id > last) | M.parent_id.not_in(P.select(P.id))))
                  .order_by(M.id).limit(1).scalar())
        if orphan is not None:
            raise ValidationError('parent_id', 'no model with id %d to be the parent of a row '
                                  'of add_models (a parent is stored before the call that '
                                  'names it); nothing was stored' % orphan)

    def walk(self, model_id, loops=True):
        """[model, parent, ...]: NotFound-free, so ``[]`` if there is no such model. A loop
        raises ValidationError (``loops``), else ends the walk."""
        M = self.Model
        chain, seen, current = [], set(), model_id
        while current is not None:
            if current in seen or len(chain) >= MAX_DEPTH:
                if not loops:
                    break
                raise ValidationError('model_id', 'the lineage of model %d loops back to model '
                                      '%d: a parent_id was set by hand; fix it with '
                                      'update_model' % (model_id, current))
            row = M.get_or_none(M.id == current)
            if row is None:
                break
            chain.append(row)
            seen.add(current)
            current = row.parent_id
        return chain
