-- objects.sql with the comparison on the server: %(expected)s gives, per (schema, kind), the ACL a
-- compliant object holds exactly as the server stores it (pgwarden.plan.expect: the planner's own
-- expectation, in the order apply grants it). An object owned by %(owner)s whose ACL equals it (and
-- that is neither an extension member nor a bookkeeping table or its sequence) is only counted: its group is made
-- from the expectation, with no ACL hashed and no row kept. Every other object goes through the
-- grouping of objects.sql. The rows are the same as objects.sql's, group for group (the tests prove
-- it on generated databases): a matched group is the group objects.sql would have made of them.
-- Nothing is materialized: the catalogs are read once to count, and once more only for the
-- catalog whose groups must be named (small groups, extensions), behind a one-time filter.
WITH expected AS MATERIALIZED (
    -- one row per schema (a hash join on the schema's oid alone), an array per kind; NULL: none sent
    SELECT e.schema,
           (SELECT array_agg(a.item::aclitem ORDER BY a.n) FROM json_array_elements_text(e."table") WITH ORDINALITY AS a(item, n)) AS table_acl,
           (SELECT array_agg(a.item::aclitem ORDER BY a.n) FROM json_array_elements_text(e.sequence) WITH ORDINALITY AS a(item, n)) AS sequence_acl,
           (SELECT array_agg(a.item::aclitem ORDER BY a.n) FROM json_array_elements_text(e.routine) WITH ORDINALITY AS a(item, n)) AS routine_acl
    FROM json_to_recordset(%(expected)s::json) AS e(schema oid, "table" json, sequence json, routine json)
),
/* include object_rows */,
-- one pass over each catalog: a matched object adds to its (schema, kind)'s count, nothing else
keyed AS (
    SELECT r.schema, r.kind, r.owner, r.extension, r.linked, r.bookkeeping,
           COALESCE(NOT r.extension AND NOT r.bookkeeping AND r.owner = %(owner)s::oid
                    AND r.acl = CASE WHEN r.subkind = 'S' THEN e.sequence_acl ELSE e.table_acl END, false) AS matched,
           r.acl
    FROM rel r LEFT JOIN expected e ON e.schema = r.schema
    UNION ALL
    SELECT r.schema, r.kind, r.owner, r.extension, r.linked, r.bookkeeping,
           COALESCE(NOT r.extension AND r.owner = %(owner)s::oid AND r.acl = e.routine_acl, false),
           r.acl
    FROM pro r LEFT JOIN expected e ON e.schema = r.schema
),
grp AS MATERIALIZED (
    SELECT row_number() OVER () AS gid, counted.*
    FROM (SELECT k.schema, k.kind, k.owner, k.extension, k.linked, k.bookkeeping, k.matched,
                 CASE WHEN k.matched THEN NULL ELSE k.acl END AS own_acl, count(*) AS count
          FROM keyed k
          GROUP BY k.schema, k.kind, k.owner, k.extension, k.linked, k.bookkeeping, k.matched,
                   CASE WHEN k.matched THEN NULL ELSE k.acl END) counted
),
full_grp AS MATERIALIZED (
    SELECT g.gid, g.schema, g.kind, g.owner, g.extension, g.linked, g.bookkeeping, g.matched, g.count,
           CASE WHEN NOT g.matched THEN g.own_acl
                WHEN g.kind = 'table' THEN e.table_acl WHEN g.kind = 'sequence' THEN e.sequence_acl
                ELSE e.routine_acl END AS acl
    FROM grp g LEFT JOIN expected e ON g.matched AND e.schema = g.schema
),
wanted AS MATERIALIZED (
    SELECT g.gid, g.schema, g.kind, g.owner, g.extension, g.linked, g.bookkeeping, g.matched, g.own_acl
    FROM grp g
    WHERE g.count <= %(threshold)s
       OR g.bookkeeping
       OR g.owner <> %(owner)s::oid
       OR EXISTS (SELECT 1 FROM grp x WHERE x.extension AND x.schema = g.schema AND x.kind = g.kind)
),
-- the second pass, for the groups that are named: each catalog only when one of its groups is
listed AS (
    SELECT w.gid, r.oid, r.name::text AS name, r.subkind,
           -- a sequence of a schema in %(detailed)s, or a bookkeeping table's: the table it belongs to (as objects.sql)
           CASE WHEN r.kind = 'sequence' AND (r.schema = ANY(%(detailed)s::oid[]) OR r.bookkeeping)
                THEN (SELECT t.relname::text FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
                      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = r.oid
                        AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjsubid > 0
                        AND d.deptype IN ('a', 'i') LIMIT 1)
           END AS args
    FROM rel r
    LEFT JOIN expected e ON e.schema = r.schema
    JOIN wanted w
      ON w.schema = r.schema AND w.kind = r.kind AND w.owner = r.owner AND w.extension = r.extension
     AND w.linked = r.linked AND w.bookkeeping = r.bookkeeping
     AND w.matched = COALESCE(NOT r.extension AND NOT r.bookkeeping AND r.owner = %(owner)s::oid
                              AND r.acl = CASE WHEN r.subkind = 'S' THEN e.sequence_acl ELSE e.table_acl END, false)
     AND (w.matched OR w.own_acl IS NOT DISTINCT FROM r.acl)
    WHERE EXISTS (SELECT 1 FROM wanted x WHERE x.kind <> 'routine')
    UNION ALL
    SELECT w.gid, r.oid, r.name::text, r.subkind, pg_catalog.pg_get_function_identity_arguments(r.args_of)
    FROM pro r
    LEFT JOIN expected e ON e.schema = r.schema
    JOIN wanted w
      ON w.schema = r.schema AND w.kind = r.kind AND w.owner = r.owner AND w.extension = r.extension
     AND w.matched = COALESCE(NOT r.extension AND r.owner = %(owner)s::oid AND r.acl = e.routine_acl, false)
     AND (w.matched OR w.own_acl IS NOT DISTINCT FROM r.acl)
    WHERE EXISTS (SELECT 1 FROM wanted x WHERE x.kind = 'routine')
),
names AS (
    SELECT l.gid, json_agg(json_build_array(l.oid, l.name, l.subkind, l.args) ORDER BY l.name, l.oid) AS objects
    FROM listed l
    GROUP BY l.gid
)
SELECT g.schema, g.kind, g.owner, g.extension, g.linked, g.bookkeeping, g.count,
       g.acl::text AS acl_text,
       COALESCE((SELECT json_agg(json_build_array(a.grantor, a.grantee, a.privilege_type, a.is_grantable)
                                 ORDER BY a.grantee, a.privilege_type)
                 FROM aclexplode(COALESCE(g.acl, acldefault(
                     CASE g.kind WHEN 'sequence' THEN 's' WHEN 'routine' THEN 'f' ELSE 'r' END::"char",
                     g.owner))) a), '[]') AS acl,
       n.objects
FROM full_grp g
LEFT JOIN names n ON n.gid = g.gid
ORDER BY g.schema, g.kind, g.owner, g.acl::text NULLS FIRST, g.extension, g.linked, g.bookkeeping  -- a total order
