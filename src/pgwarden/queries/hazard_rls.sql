-- Row level security in the managed schemas: tables with RLS enabled, and views over such tables
-- that do not run as the invoker (security_invoker, 15+).
SELECT 'table' AS kind, n.nspname AS schema, c.relname AS name, c.relowner AS owner,
       c.relforcerowsecurity AS forced, NULL::text AS base_schema, NULL::text AS base_name
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relrowsecurity AND c.relkind IN ('r', 'p') AND c.relnamespace = ANY(%(schemas)s::oid[])
UNION ALL
-- views are found from the (few) RLS tables through pg_depend's reference index, not by walking
-- every view's rewrite rule
SELECT DISTINCT 'view', vn.nspname, v.relname, v.relowner, NULL::boolean, tn.nspname, t.relname
FROM pg_catalog.pg_class t
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = t.oid
                           AND d.classid = 'pg_catalog.pg_rewrite'::regclass
JOIN pg_catalog.pg_rewrite rw ON rw.oid = d.objid
JOIN pg_catalog.pg_class v ON v.oid = rw.ev_class AND v.oid <> t.oid
JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
WHERE t.relrowsecurity AND v.relkind = 'v' AND v.relnamespace = ANY(%(schemas)s::oid[])
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_options_to_table(v.reloptions) o
                  WHERE o.option_name = 'security_invoker' AND lower(o.option_value) IN ('true', 'on', '1', 'yes'))
ORDER BY 1, 2, 3
