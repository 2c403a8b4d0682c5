-- One database: owner and ACL (NULL ACL means the built-in default, made explicit here), plus, in
-- the same round trip, what plan needs once per existing database:
-- `types`: the types and domains of the managed schemas that the policy's owner does not own (a
--   compliant database has none). Left out, as adopt leaves them: array and multirange types and
--   table row types (they follow their base object), and extension members.
-- `guard`: pgwarden's guard where it has no part (no event trigger, no schema pgwarden); NULL where
--   it has one: guard.sql then reads it.
-- `columns`: column_acls.sql in place of the columns marker line (a scalar subquery), or '[]' where a
--   big database's check reads it on a second connection (pgwarden.snapshot.inspect)
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
       /* columns */ AS columns,
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
