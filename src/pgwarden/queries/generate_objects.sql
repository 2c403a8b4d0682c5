-- init --from-database: every table, sequence and routine of the schemas asked for, one row each,
-- with its owner and its ACL by role name (NULL grantee: PUBLIC; a NULL ACL made explicit), and for
-- relations whose columns carry grants, every column with its own ACL. One row per object: this
-- runs once, when a team adopts pgwarden, not on every plan.
WITH managed AS (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY(%(schemas)s::text[])),
obj AS (
    SELECT c.relnamespace AS nsp, CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END AS kind,
           c.relname::text AS name, NULL::text AS args, c.relowner AS owner, c.oid,
           COALESCE(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)) AS acl,
           'pg_catalog.pg_class'::regclass AS classid,
           -- a serial's or identity's sequence: the table it belongs to (it goes with it in scopes)
           CASE WHEN c.relkind = 'S' THEN
               (SELECT t.relname::text FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
                WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                  AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjsubid > 0
                  AND d.deptype IN ('a', 'i') AND t.relnamespace = c.relnamespace LIMIT 1)
           END AS tbl
    FROM pg_catalog.pg_class c
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND c.relnamespace IN (SELECT oid FROM managed)
    UNION ALL
    SELECT p.pronamespace, 'routine', p.proname::text, pg_catalog.pg_get_function_identity_arguments(p.oid),
           p.proowner, p.oid, COALESCE(p.proacl, acldefault('f', p.proowner)), 'pg_catalog.pg_proc'::regclass, NULL
    FROM pg_catalog.pg_proc p
    WHERE p.pronamespace IN (SELECT oid FROM managed)
)
SELECT n.nspname::text AS schema, o.kind, o.name, o.args, o.tbl AS table, pg_catalog.pg_get_userbyid(o.owner)::text AS owner,
       EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
               WHERE e.classid = o.classid AND e.objid = o.oid AND e.deptype = 'e') AS extension,
       (SELECT COALESCE(json_agg(json_build_array(
                   CASE WHEN x.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(x.grantee)::text END,
                   x.privilege_type, pg_catalog.pg_get_userbyid(x.grantor)::text, x.is_grantable)), '[]')
        FROM aclexplode(o.acl) x) AS acl,
       CASE WHEN o.kind = 'table' AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                                              WHERE a.attrelid = o.oid AND a.attacl IS NOT NULL) THEN
           (SELECT json_agg(json_build_array(a.attname::text,
                       (SELECT COALESCE(json_agg(json_build_array(
                                   CASE WHEN x.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(x.grantee)::text END,
                                   x.privilege_type, pg_catalog.pg_get_userbyid(x.grantor)::text, x.is_grantable)), '[]')
                        FROM aclexplode(a.attacl) x)) ORDER BY a.attnum)
            FROM pg_catalog.pg_attribute a WHERE a.attrelid = o.oid AND a.attnum > 0 AND NOT a.attisdropped)
       END AS columns
FROM obj o
JOIN pg_catalog.pg_namespace n ON n.oid = o.nsp
ORDER BY n.nspname, o.kind, o.name, o.args
