-- The columns of the managed schemas' relations whose schema.table.column is LIKE one of the
-- labels' patterns (pgwarden.access.labels matches them exactly afterwards).
SELECT n.nspname::text AS schema, c.relname::text AS table, a.attname::text AS column
FROM pg_catalog.pg_namespace n
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = ANY(%(schemas)s::text[])
  AND (n.nspname || '.' || c.relname || '.' || a.attname) LIKE ANY(%(patterns)s::text[])
ORDER BY 1, 2, a.attnum
