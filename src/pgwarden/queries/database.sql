-- One database: owner and ACL (NULL ACL means the built-in default, made explicit here), plus, in
-- the same round trip, what plan needs once per existing database:
-- `types`: the types and domains of the managed schemas that the policy's owner does not own (a
--   compliant database has none). Left out, as adopt leaves them: array and multirange types and
--   table row types (they follow their base object), and extension members.
-- `guard`: pgwarden's guard as the server has it: its event trigger, its function and the schema
--   pgwarden keeps it in (every column NULL or false when there is no guard).
-- `columns`: the column-level ACLs of the managed schemas' relations and of the system catalogs
--   (pg_catalog, information_schema: with what initdb gave, `initial`), rare: one scan of
--   pg_attribute for the rows that have one; 65 ms at 100,000 tables, PostgreSQL 16. And every other
--   column of the tables named in %(column_tables)s (a policy's column exceptions: their columns
--   must hold column grants), found by name through the catalogs' indexes.
WITH managed AS (SELECT ARRAY(SELECT n.oid FROM pg_catalog.pg_namespace n
                              WHERE n.nspname = ANY(%(schemas)s::text[])) AS oids)
SELECT d.oid, d.datname AS name, d.datdba AS owner,
       COALESCE((SELECT json_agg(json_build_array(a.grantor, a.grantee, a.privilege_type, a.is_grantable)
                                 ORDER BY a.grantee, a.privilege_type)
                 FROM aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) a), '[]') AS acl,
       (WITH candidates AS MATERIALIZED (
            -- cheap filters first, in one scan of pg_type: a compliant database leaves no row here
            SELECT t.oid, t.typnamespace, t.typname, t.typtype, t.typowner, t.typrelid
            FROM pg_catalog.pg_type t
            WHERE t.typowner <> %(owner)s::oid AND t.typtype IN ('b', 'c', 'd', 'e', 'r')
              AND t.typnamespace = ANY((SELECT oids FROM managed)::oid[]))
        SELECT COALESCE(json_agg(json_build_object('oid', t.oid::int8, 'schema', t.typnamespace::int8,
                                                   'name', t.typname::text, 'subkind', t.typtype::text,
                                                   'owner', t.typowner::int8)
                                 ORDER BY t.typnamespace, t.typname), '[]')
        FROM candidates t
        WHERE (t.typrelid = 0 OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend dep
                          WHERE dep.classid = 'pg_catalog.pg_type'::regclass AND dep.objid = t.oid
                            AND dep.deptype = 'e')) AS types,
       (SELECT COALESCE(json_agg(json_build_object(
                   'relation', a.attrelid::int8, 'schema', c.relnamespace::int8, 'table', c.relname::text,
                   'schema_name', c.relnamespace::regnamespace::text,
                   'subkind', c.relkind::text, 'owner', c.relowner::int8, 'column', a.attname::text,
                   'acl', (SELECT json_agg(json_build_array(x.grantor, x.grantee, x.privilege_type, x.is_grantable)
                                           ORDER BY x.grantee, x.privilege_type)
                           FROM aclexplode(a.attacl) x),
                   'system', c.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace),
                   'initial', (SELECT json_agg(json_build_array(x.grantor, x.grantee, x.privilege_type, x.is_grantable))
                               FROM pg_catalog.pg_init_privs i, aclexplode(i.initprivs) x
                               WHERE i.classoid = 'pg_catalog.pg_class'::regclass AND i.objoid = a.attrelid
                                 AND i.objsubid = a.attnum))
                 ORDER BY c.relnamespace, c.relname, a.attnum), '[]')
        FROM (SELECT a.attrelid, a.attname, a.attnum, a.attacl
              FROM pg_catalog.pg_attribute a
              WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
              UNION ALL
              SELECT a.attrelid, a.attname, a.attnum, a.attacl
              FROM json_to_recordset(%(column_tables)s::json) AS w(s text, t text)
              JOIN pg_catalog.pg_namespace tn ON tn.nspname = w.s
              JOIN pg_catalog.pg_class t ON t.relnamespace = tn.oid AND t.relname = w.t
              JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid
              WHERE a.attacl IS NULL AND a.attnum > 0 AND NOT a.attisdropped) a
        JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
              OR c.relnamespace = ANY((SELECT oids FROM managed)::oid[])) AS columns,
       (SELECT row_to_json(g)
        FROM (SELECT e.evtenabled::text AS trigger_enabled, e.evtevent::text AS trigger_event,
                     e.evtfoid = p.oid AS trigger_calls_function,
                     p.prosrc AS source, p.prosecdef AS security_definer, p.proconfig AS config,
                     r.rolsuper AS owner_is_superuser, p.proacl::text AS acl,
                     n.oid IS NOT NULL AS schema_exists,
                     -- what the guard does, beyond its name: the commands it filters on, its language,
                     -- who may run it, and who owns and may use its schema (its owner may replace it)
                     e.evttags AS trigger_tags,
                     (SELECT l.lanname FROM pg_catalog.pg_language l WHERE l.oid = p.prolang)::text AS language,
                     p.proacl IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(p.proacl) x
                                                          WHERE x.grantee <> p.proowner) AS function_private,
                     (SELECT s.rolsuper FROM pg_catalog.pg_roles s WHERE s.oid = n.nspowner) AS schema_owner_is_superuser,
                     NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(n.nspacl) x
                                 WHERE x.grantee <> n.nspowner) AS schema_private,
                     (SELECT pg_catalog.array_agg(CASE WHEN x.grantee = 0 THEN 'PUBLIC'
                                                  ELSE pg_catalog.pg_get_userbyid(x.grantee) END)
                      FROM (SELECT DISTINCT y.grantee FROM pg_catalog.aclexplode(n.nspacl) y
                            WHERE y.grantee <> n.nspowner) x) AS schema_grantees,
                     -- counted only when the schema exists (each count scans its catalog)
                     CASE WHEN n.oid IS NULL THEN 0 ELSE
                       (SELECT count(*) FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid)
                       + (SELECT count(*) FROM pg_catalog.pg_proc o
                          WHERE o.pronamespace = n.oid AND o.oid <> COALESCE(p.oid, 0))
                       + (SELECT count(*) FROM pg_catalog.pg_type ty WHERE ty.typnamespace = n.oid)
                     END AS other_objects
              FROM (SELECT 1) one
              LEFT JOIN pg_catalog.pg_event_trigger e ON e.evtname = 'pgwarden_guard'
              LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = 'pgwarden'
              LEFT JOIN pg_catalog.pg_proc p ON p.pronamespace = n.oid AND p.proname = 'guard' AND p.pronargs = 0
              LEFT JOIN pg_catalog.pg_roles r ON r.oid = p.proowner) g) AS guard
FROM pg_catalog.pg_database d
WHERE d.datname = %(name)s
