"""The task calls (the inference-autotuner's ``tasks``): ModelStore's task methods are these.

A ``Tasks`` is made by its store with the bound ``Task`` model and the store's ``Calls`` (how a
call meets the database, modelstore.registry.calls); fields are checked by the model's rules.
"""
from peewee import IntegrityError

from ..exceptions import NotFound, ValidationError
from ..dialects import constraint_error
from .likes import contains, like_pattern
from .calls import Calls
from .rules import Rules
from .validate import check_id, check_page, check_status, check_text

__all__ = ['Tasks']


class Tasks:
    def __init__(self, task_model, calls: Calls):
        self.Task = task_model
        self.database = task_model._meta.database
        self.rules = Rules(task_model)
        self._run = calls.run
        self._one = calls.one

    def add_task(self, **fields):
        values = self.rules.check(fields)

        def add():
            self._check_unique_name(values['task_name'])
            try:  # No savepoint: a refusal ends the call (see update_model).
                return self.Task.create(**values)
            except IntegrityError as exc:
                raise self._integrity(exc, values, self.database) from None
        return self._run('add_task', add, write=True)

    def get_task(self, task_id):
        check_id('task_id', task_id)
        return self._one('get_task', self.Task.select().where(self.Task.id == task_id),
                         'no task with id %d' % task_id)

    def get_task_by_name(self, task_name):
        if not isinstance(task_name, str):
            raise ValidationError('task_name', 'must be a string, got %s'
                                  % type(task_name).__name__)
        return self._one('get_task_by_name',
                         self.Task.select().where(self.Task.task_name == task_name),
                         'no task named %r' % task_name)

    def list_tasks(self, status=None, *, base_runtime=None, name_contains=None, limit=None,
                   offset=0):
        query = self.query(status, base_runtime, name_contains).order_by(self.Task.id)
        if limit is not None:
            query = query.limit(check_page('limit', limit, minimum=1))
        offset = check_page('offset', offset, minimum=0)
        if offset:
            query = query.offset(offset)
        return self._run('list_tasks', lambda: list(query))

    def count_tasks(self, status=None, *, base_runtime=None, name_contains=None):
        return self._run('count_tasks',
                         self.query(status, base_runtime, name_contains).count)

    def query(self, status, base_runtime, name_contains):
        T = self.Task
        query = T.select()
        if status is not None:
            query = query.where(T.status == check_status('status', status))
        if base_runtime is not None:
            query = query.where(T.base_runtime == check_text('base_runtime', base_runtime))
        if name_contains is not None:
            query = query.where(contains(T.task_name, like_pattern(
                check_text('name_contains', name_contains))))
        return query

    def update_task(self, task_id, **fields):
        check_id('task_id', task_id)
        values = self.rules.check(fields, partial=True)
        T = self.Task

        def update():
            if not T.select().where(T.id == task_id).exists():
                raise NotFound('no task with id %d' % task_id)
            if 'task_name' in values:
                self._check_unique_name(values['task_name'], exclude=task_id)
            if values:
                try:  # No savepoint, as add_task.
                    T.update(**values).where(T.id == task_id).execute()
                except IntegrityError as exc:
                    raise self._integrity(exc, values, self.database) from None
            return T.get_by_id(task_id)
        return self._run('update_task', update, write=True)

    def _check_unique_name(self, name, exclude=None):
        T = self.Task
        query = T.select().where(T.task_name == name)
        if exclude is not None:
            query = query.where(T.id != exclude)
        if query.exists():
            raise ValidationError('task_name', 'a task named %r already exists' % name)

    @staticmethod
    def _integrity(exc, values, database):
        error = constraint_error(exc, database)
        if error.field == 'task_name':
            return ValidationError('task_name', 'a task named %r already exists'
                                   % values.get('task_name'))
        return error
