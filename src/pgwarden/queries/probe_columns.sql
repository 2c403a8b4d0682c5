-- The live columns of the tables whose grants exclude columns: probe selects each of them alone,
-- as each role, to prove the column-level grants (the excluded ones denied, the others allowed).
SELECT n.nspname AS schema, c.relname AS name, c.oid::int8 AS oid, a.attname::text AS col
FROM unnest(%(schemas)s::text[], %(tables)s::text[]) AS w(schema, name)
JOIN pg_catalog.pg_namespace n ON n.nspname = w.schema
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = w.name AND c.relkind IN ('r', 'p')
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY 1, 2, a.attnum
