"""The task calls of ModelStore (the inference-autotuner's ``tasks``), as a mixin: ModelStore
provides ``Task``, ``database`` and ``_run``/``_one`` (modelstore.registry.store)."""
from peewee import IntegrityError

from ..exceptions import NotFound, ValidationError
from ..shared.dberrors import constraint_error
from .likes import contains, like_pattern
from .validate import TASK_FIELDS, check_fields, check_id, check_page, check_status, check_text

__all__ = ['TaskCalls']


class TaskCalls:
    def add_task(self, **fields):
        """Record an autotuning task; returns the stored Task.

        Required: task_name (unique), base_runtime, model_config, parameters,
        optimization_config, benchmark_config. See TASK_FIELDS for the rest; ``metadata`` is
        accepted for ``task_metadata``.
        """
        values = check_fields(TASK_FIELDS, fields)

        def add():
            self._check_unique_name(values['task_name'])
            try:
                with self.database.atomic():
                    return self.Task.create(**values)
            except IntegrityError as exc:
                raise self._integrity(exc, values, self.database) from None
        return self._run('add_task', add, write=True)

    def get_task(self, task_id):
        """The task with this id, or NotFound."""
        check_id('task_id', task_id)
        return self._one('get_task', self.Task.select().where(self.Task.id == task_id),
                         'no task with id %d' % task_id)

    def get_task_by_name(self, task_name):
        """The task with this name, or NotFound."""
        if not isinstance(task_name, str):
            raise ValidationError('task_name', 'must be a string, got %s'
                                  % type(task_name).__name__)
        return self._one('get_task_by_name',
                         self.Task.select().where(self.Task.task_name == task_name),
                         'no task named %r' % task_name)

    def list_tasks(self, status=None, *, base_runtime=None, name_contains=None, limit=None,
                   offset=0):
        """Tasks in id order, optionally only those with ``status`` (member, NAME or value),
        ``base_runtime`` (exact) or a ``task_name`` containing ``name_contains`` (ignoring
        case); ``limit``/``offset`` page through them."""
        query = self._tasks_query(status, base_runtime, name_contains).order_by(self.Task.id)
        if limit is not None:
            query = query.limit(check_page('limit', limit, minimum=1))
        offset = check_page('offset', offset, minimum=0)
        if offset:
            query = query.offset(offset)
        return self._run('list_tasks', lambda: list(query))

    def count_tasks(self, status=None, *, base_runtime=None, name_contains=None):
        """How many tasks list_tasks would return for these filters (without a page)."""
        return self._run('count_tasks',
                         self._tasks_query(status, base_runtime, name_contains).count)

    def _tasks_query(self, status, base_runtime, name_contains):
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
        """Change the given fields of a task; returns the updated Task."""
        check_id('task_id', task_id)
        values = check_fields(TASK_FIELDS, fields, partial=True)
        T = self.Task

        def update():
            if not T.select().where(T.id == task_id).exists():
                raise NotFound('no task with id %d' % task_id)
            if 'task_name' in values:
                self._check_unique_name(values['task_name'], exclude=task_id)
            if values:
                try:
                    with self.database.atomic():
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
