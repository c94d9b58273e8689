"""Clients: the workers connected to the registry, so that a contract script waits for the old ones.

A rolling deploy runs release N and N+1 side by side. Each `modelstore.connect()` registers its
process here -- its release, the last script its code knows, host, pid, when it started and when
it was last seen (on the database server's clock) -- and refreshes `last_seen` as it works;
`migrate` refuses a contract script while a client built for a schema before it is alive
(modelstore.engine.clients). An expand script: a new table, which release N never touches.

* create table modelstore_clients
"""
from peewee import *

phase = 'expand'


def _models(db):
    """A frozen copy of the table this script creates, as it is here."""
    class Client(Model):
        release = CharField(max_length=255)
        schema_head = CharField(max_length=255)
        host = CharField(max_length=255)
        pid = IntegerField()
        started = DoubleField()
        last_seen = DoubleField(index=True)

        class Meta:
            database = db
            table_name = 'modelstore_clients'

    return Client,


def up(migrator, db):
    Client, = _models(db)
    db.create_tables([Client], safe=False)


def down(migrator, db):
    migrator.migrate(migrator.drop_table('modelstore_clients'))
