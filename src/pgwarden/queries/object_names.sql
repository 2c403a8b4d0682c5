-- The objects of chosen groups (see objects.sql), for the groups a plan must change one by one:
-- one pass over pg_class and pg_proc, hash-joined with the wanted (schema, kind, owner) keys; the
-- ACL is compared as text only for the rows of those keys. %(keys)s is a JSON array of
-- [group number, schema oid, kind, owner oid, linked, ACL as text or null]; %(schemas)s their schemas.
WITH want AS (
    SELECT (k ->> 0)::int AS gid, (k ->> 1)::oid AS schema, k ->> 2 AS kind, (k ->> 3)::oid AS owner,
           (k ->> 4)::boolean AS linked, k ->> 5 AS acl_text
    FROM jsonb_array_elements(%(keys)s::jsonb) AS t(k)
),
/* include object_rows */,
obj AS (
    -- bookkeeping tables and their sequences are groups of their own, named by objects.sql already;
    -- extension members too
    SELECT r.oid, r.schema, r.owner, r.kind, r.subkind, r.name::text AS name, NULL::text AS args,
           r.acl::text AS acl_text, r.linked
    FROM rel r
    WHERE NOT r.extension AND NOT r.bookkeeping
    UNION ALL
    SELECT r.oid, r.schema, r.owner, r.kind, r.subkind, r.name::text,
           pg_catalog.pg_get_function_identity_arguments(r.args_of), r.acl::text, false
    FROM pro r
    WHERE NOT r.extension
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
