-- Tables, sequences and routines of the managed schemas, grouped by (schema, kind, owner, ACL):
-- a compliant schema collapses to a handful of rows whatever its size. Object names are listed
-- only where a plan may need them: small groups, objects not owned by %(owner)s, and
-- (schema, kind) pairs that contain extension members (bulk statements would touch those).
-- Grouping hashes the ACL arrays themselves (no text conversion, no sort), and names are
-- aggregated only for the groups that want them, through a hash join. A listed sequence of a
-- schema in %(detailed)s (the policy treats its objects one by one) carries the table it belongs
-- to (serial, identity) in place of the routines' arguments: grants on a table reach its sequence.
-- Migration bookkeeping tables and their sequences form groups of their own, always named (a sequence
-- with its table). What makes an object an extension member, linked or bookkeeping is said once, in
-- object_rows.sql, for this query and objects_expected.sql.
WITH /* include object_rows */,
obj AS MATERIALIZED (
    SELECT r.oid, r.schema, r.owner, r.kind, r.subkind, r.name::text AS name, NULL::text AS args, r.acl,
           r.extension, r.linked, r.bookkeeping
    FROM rel r
    UNION ALL
    SELECT r.oid, r.schema, r.owner, r.kind, r.subkind, r.name::text, pg_catalog.pg_get_function_identity_arguments(r.args_of),
           r.acl, r.extension, r.linked, r.bookkeeping
    FROM pro r
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
