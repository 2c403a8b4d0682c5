-- The objects of chosen groups (see objects.sql), for the groups a plan must change one by one:
-- one pass over pg_class and pg_proc, hash-joined with the wanted (schema, kind, owner) keys; the
-- ACL is compared as text only for the rows of those keys. %(keys)s is a JSON array of
-- [group number, schema oid, kind, owner oid, linked, ACL as text or null].
WITH want AS (
    SELECT (k ->> 0)::int AS gid, (k ->> 1)::oid AS schema, k ->> 2 AS kind, (k ->> 3)::oid AS owner,
           (k ->> 4)::boolean AS linked, k ->> 5 AS acl_text
    FROM jsonb_array_elements(%(keys)s::jsonb) AS t(k)
),
obj AS (
    SELECT c.oid, c.relnamespace AS schema, c.relowner AS owner,
           CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END AS kind,
           c.relkind::text AS subkind, c.relname::text AS name, NULL::text AS args, c.relacl::text AS acl_text,
           (c.relkind = 'S' AND c.relowner <> %(owner)s::oid
            AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend linked
                        WHERE linked.classid = 'pg_catalog.pg_class'::regclass AND linked.objid = c.oid
                          AND linked.refobjsubid > 0 AND linked.deptype IN ('a', 'i'))) AS linked
    FROM pg_catalog.pg_class c
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND c.relnamespace IN (SELECT schema FROM want)
      -- bookkeeping tables and their sequences are groups of their own, named by objects.sql already
      AND NOT (c.relkind IN ('r', 'p') AND (c.relname = ANY(%(bookkeeping)s::text[])
                                            OR c.relnamespace = ANY(%(bookkeeping_schemas)s::oid[])))
      AND NOT (c.relkind = 'S' AND (c.relnamespace = ANY(%(bookkeeping_schemas)s::oid[])
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
                          WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                            AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjsubid > 0
                            AND d.deptype IN ('a', 'i') AND t.relname = ANY(%(bookkeeping)s::text[]))))
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend ext
                      WHERE ext.classid = 'pg_catalog.pg_class'::regclass AND ext.objid = c.oid
                        AND ext.deptype = 'e')
    UNION ALL
    SELECT p.oid, p.pronamespace, p.proowner, 'routine', p.prokind::text, p.proname::text,
           pg_catalog.pg_get_function_identity_arguments(p.oid), p.proacl::text, false
    FROM pg_catalog.pg_proc p
    WHERE p.pronamespace IN (SELECT schema FROM want)
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend ext
                      WHERE ext.classid = 'pg_catalog.pg_proc'::regclass AND ext.objid = p.oid
                        AND ext.deptype = 'e')
)
SELECT w.gid, json_agg(json_build_array(o.oid, o.name, o.subkind,
                         -- a sequence of a schema treated one by one: the table it belongs to (objects.sql)
                         CASE WHEN o.kind = 'sequence' AND o.schema = ANY(%(detailed)s::oid[])
                              THEN (SELECT t.relname::text FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = o.oid
                      AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjsubid > 0
                      AND d.deptype IN ('a', 'i') LIMIT 1)
                              ELSE o.args END) ORDER BY o.name, o.oid) AS objects
FROM obj o
JOIN want w ON w.schema = o.schema AND w.kind = o.kind AND w.owner = o.owner AND w.linked = o.linked
           AND w.acl_text IS NOT DISTINCT FROM o.acl_text
GROUP BY w.gid
ORDER BY w.gid
