-- What probe tries its actions on: every relation (tables, views, materialized views, foreign
-- tables, sequences) and every plain function of the managed schemas, not those of extensions
-- (the extension owns them, not the policy). Functions whose arguments or result are pseudo-types
-- (anyelement, internal, ...) or that are variadic cannot be called with typed NULLs: left out.
-- `col` is the first live column (for UPDATE ... SET col = DEFAULT); `argtypes` the call's types.
SELECT 'relation' AS what, n.nspname AS schema, c.relname AS name, c.oid::int8 AS oid, c.relkind::text AS subkind,
       (SELECT a.attname FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum LIMIT 1)::text AS col,
       NULL::text[] AS argtypes
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND n.nspname = ANY(%(schemas)s)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
UNION ALL
SELECT 'function', n.nspname, p.proname, p.oid::int8, p.prokind::text, NULL,
       ARRAY(SELECT pg_catalog.format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) t)
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_type rt ON rt.oid = p.prorettype
WHERE n.nspname = ANY(%(schemas)s) AND p.prokind = 'f' AND p.provariadic = 0 AND rt.typtype <> 'p'
  AND NOT EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[]) t JOIN pg_catalog.pg_type ty ON ty.oid = t
                  WHERE ty.typtype = 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY 1, 2, 3, 4
