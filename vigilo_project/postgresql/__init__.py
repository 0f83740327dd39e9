"""Django's PostgreSQL backend, with one opt-in change for bulk inserts of large JSON documents.

Django 5.2 inserts many rows as `INSERT ... SELECT * FROM UNNEST(%s::jsonb[], ...)`. With client-side binding,
psycopg quotes each array in Python and escapes every `"` of every JSON text with a regular expression. For
rows that carry whole JSON documents (dataset cases, execution snapshots) that costs more than the database's
own work: importing 10,000 cases took 3.2 s instead of 1.4 s. The plain multi-row VALUES form quotes each value
in C. For rows with small JSON values and many columns (evaluator results) UNNEST stays faster, because the
VALUES form makes psycopg split a query with thousands of placeholders. So a model opts in by setting
`bulk_insert_values = True` on its class.
"""
