-- Tables, sequences and routines of the managed schemas, grouped by (schema, kind, owner, ACL):
-- a compliant schema collapses to a handful of rows whatever its size. Object names are listed
-- only where a plan may need them: small groups, objects not owned by %(owner)s, and
-- (schema, kind) pairs that contain extension members (bulk statements would touch those).
-- Grouping hashes the ACL arrays themselves (no text conversion, no sort), and names are
-- aggregated only for the groups that want them, through a hash join. A listed sequence of a
-- schema in %(detailed)s (the policy treats its objects one by one) carries the table it belongs
-- to (serial, identity) in place of the routines' arguments: grants on a table reach its sequence.
-- Migration bookkeeping tables (%(bookkeeping)s names, every table of %(bookkeeping_schemas)s) and
-- their sequences form groups of their own, always named (a sequence with its table): access roles
-- may not write them (pgwarden.bookkeeping).
WITH obj AS MATERIALIZED (
    SELECT c.oid, c.relnamespace AS schema, c.relowner AS owner,
           CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END AS kind,
           c.relkind::text AS subkind, c.relname::text AS name, NULL::text AS args,
           c.relacl AS acl,
           ext.objid IS NOT NULL AS extension,
           -- a serial/identity sequence follows its table's owner; only asked where the owner
           -- is not the policy's (an ownership change is planned only there)
           (c.relkind = 'S' AND c.relowner <> %(owner)s::oid
            AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend linked
                        WHERE linked.classid = 'pg_catalog.pg_class'::regclass AND linked.objid = c.oid
                          AND linked.refobjsubid > 0 AND linked.deptype IN ('a', 'i'))) AS linked,
           (c.relkind IN ('r', 'p') AND (c.relname = ANY(%(bookkeeping)s::text[])
                                         OR c.relnamespace = ANY(%(bookkeeping_schemas)s::oid[])))
           -- the sequence of a bookkeeping table (serial, identity): nextval/setval write the history too
           OR (c.relkind = 'S' AND (c.relnamespace = ANY(%(bookkeeping_schemas)s::oid[])
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
                          WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                            AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjsubid > 0
                            AND d.deptype IN ('a', 'i') AND t.relname = ANY(%(bookkeeping)s::text[])))) AS bookkeeping
    FROM pg_catalog.pg_class c
    LEFT JOIN pg_catalog.pg_depend ext
           ON ext.classid = 'pg_catalog.pg_class'::regclass AND ext.objid = c.oid AND ext.deptype = 'e'
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND c.relnamespace = ANY(%(schemas)s::oid[])
    UNION ALL
    SELECT p.oid, p.pronamespace, p.proowner, 'routine', p.prokind::text, p.proname::text,
           pg_catalog.pg_get_function_identity_arguments(p.oid),
           p.proacl, ext.objid IS NOT NULL, false, false
    FROM pg_catalog.pg_proc p
    LEFT JOIN pg_catalog.pg_depend ext
           ON ext.classid = 'pg_catalog.pg_proc'::regclass AND ext.objid = p.oid AND ext.deptype = 'e'
    WHERE p.pronamespace = ANY(%(schemas)s::oid[])
),
grp AS (
    SELECT row_number() OVER () AS gid, schema, kind, owner, extension, linked, bookkeeping, acl, count
    FROM (SELECT schema, kind, owner, extension, linked, bookkeeping, acl, count(*) AS count
          FROM obj
          GROUP BY schema, kind, owner, extension, linked, bookkeeping, acl) counted
),
wanted AS (
    SELECT g.gid, g.schema, g.kind, g.owner, g.extension, g.linked, g.bookkeeping, g.acl
    FROM grp g
    WHERE g.count <= %(threshold)s
       OR g.bookkeeping
       OR g.owner <> %(owner)s::oid
       OR EXISTS (SELECT 1 FROM grp e WHERE e.extension AND e.schema = g.schema AND e.kind = g.kind)
),
names AS (
    -- grouped by the group's number: ordered aggregates cannot hash, and ACL arrays cannot sort
    SELECT w.gid, json_agg(json_build_array(o.oid, o.name, o.subkind,
                             CASE WHEN o.kind = 'sequence' AND (o.schema = ANY(%(detailed)s::oid[]) OR o.bookkeeping)
                                  THEN (SELECT t.relname::text FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = o.oid
                      AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjsubid > 0
                      AND d.deptype IN ('a', 'i') LIMIT 1)
                                  ELSE o.args END) ORDER BY o.name, o.oid) AS objects
    FROM obj o
    JOIN wanted w
      ON w.schema = o.schema AND w.kind = o.kind AND w.owner = o.owner
     AND w.extension = o.extension AND w.linked = o.linked AND w.bookkeeping = o.bookkeeping
     AND w.acl IS NOT DISTINCT FROM o.acl
    GROUP BY w.gid
)
SELECT g.schema, g.kind, g.owner, g.extension, g.linked, g.bookkeeping, g.count,
       g.acl::text AS acl_text,
       COALESCE((SELECT json_agg(json_build_array(a.grantor, a.grantee, a.privilege_type, a.is_grantable)
                                 ORDER BY a.grantee, a.privilege_type)
                 FROM aclexplode(COALESCE(g.acl, acldefault(
                     CASE g.kind WHEN 'sequence' THEN 's' WHEN 'routine' THEN 'f' ELSE 'r' END::"char",
                     g.owner))) a), '[]') AS acl,
       n.objects
FROM grp g
LEFT JOIN names n ON n.gid = g.gid
ORDER BY g.schema, g.kind, g.owner, g.acl::text NULLS FIRST, g.extension, g.linked, g.bookkeeping  -- a total order
