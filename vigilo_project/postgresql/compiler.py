from django.db.backends.postgresql.compiler import *  # noqa: F403 - the backend's other compilers, unchanged
from django.db.backends.postgresql.compiler import SQLInsertCompiler as PgInsertCompiler
from django.db.models.sql.compiler import SQLInsertCompiler as BaseInsertCompiler


class SQLInsertCompiler(PgInsertCompiler):
    def assemble_as_sql(self, fields, value_rows):
        if getattr(self.query.model, "bulk_insert_values", False):
            return BaseInsertCompiler.assemble_as_sql(self, fields, value_rows)  # VALUES (...), (...)
        return super().assemble_as_sql(fields, value_rows)
