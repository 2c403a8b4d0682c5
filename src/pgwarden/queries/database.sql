-- One database: owner and ACL (NULL ACL means the built-in default, made explicit here), plus, in
-- the same round trip, what plan needs once per existing database:
-- `types`: the types and domains of the managed schemas that the policy's owner does not own (a
--   compliant database has none). Left out, as adopt leaves them: array and multirange types and
--   table row types (they follow their base object), and extension members.
-- `guard`: pgwarden's guard where it has no part (no event trigger, no schema pgwarden); NULL where
--   it has one: guard.sql then reads it.
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
       -- the guard (guard.sql), as it is where none of its parts exists; NULL where one does: guard.sql
       -- then reads it (a fresh backend spends more on planning it than on all the rest of this query)
       (SELECT json_build_object('trigger_enabled', NULL, 'trigger_event', NULL, 'trigger_calls_function', NULL,
                                 'source', NULL, 'security_definer', NULL, 'config', NULL,
                                 'owner_is_superuser', NULL, 'acl', NULL, 'schema_exists', false,
                                 'trigger_tags', NULL, 'language', NULL, 'function_private', false,
                                 'schema_owner_is_superuser', NULL, 'schema_private', true,
                                 'schema_grantees', NULL, 'other_objects', 0)
        WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'pgwarden_guard')
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname = 'pgwarden')) AS guard
FROM pg_catalog.pg_database d
WHERE d.datname = %(name)s
