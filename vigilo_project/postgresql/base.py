from django.db.backends.postgresql import base
from django.db.backends.postgresql.operations import DatabaseOperations as PgOperations


class DatabaseOperations(PgOperations):
    compiler_module = "vigilo_project.postgresql.compiler"


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
