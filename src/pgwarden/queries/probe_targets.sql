-- What probe tries its actions on: every relation (tables, views, materialized views, foreign
-- tables, sequences) and every plain function of the managed schemas, not those of extensions
-- (the extension owns them, not the policy). Functions whose arguments or result are pseudo-types
-- (anyelement, internal, ...) or that are variadic cannot be called with typed NULLs: left out.
-- `col` is the first live column (for UPDATE ... SET col = DEFAULT); `argtypes` the call's types;
-- `owned_by` a sequence's table (serial, identity): grants on the table reach it (scopes.py).
SELECT 'relation' AS what, n.nspname AS schema, c.relname AS name, c.oid::int8 AS oid, c.relkind::text AS subkind,
       (SELECT a.attname FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum LIMIT 1)::text AS col,
       NULL::text[] AS argtypes,
       CASE WHEN c.relkind = 'S' THEN
         (SELECT t.relname::text FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
          WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
            AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjsubid > 0
            AND d.deptype IN ('a', 'i') LIMIT 1) END AS owned_by
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND n.nspname = ANY(%(schemas)s)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
UNION ALL
SELECT 'function', n.nspname, p.proname, p.oid::int8, p.prokind::text, NULL,
       ARRAY(SELECT pg_catalog.format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) t), NULL
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_type rt ON rt.oid = p.prorettype
WHERE n.nspname = ANY(%(schemas)s) AND p.prokind = 'f' AND p.provariadic = 0 AND rt.typtype <> 'p'
  AND NOT EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[]) t JOIN pg_catalog.pg_type ty ON ty.oid = t
                  WHERE ty.typtype = 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY 1, 2, 3, 4
