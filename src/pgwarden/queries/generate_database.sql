-- init --from-database: this database's owner and ACL by role name (NULL grantee: PUBLIC; each entry
-- [grantee, privilege, grantor, grantable], as acl.Grant), and every schema's oid, name and number of
-- relations and routines (whether it holds anything). The schemas' owners and ACLs and the default
-- privileges are the snapshot's queries (schemas.sql, default_acls.sql).
SELECT pg_catalog.pg_get_userbyid(d.datdba)::text AS owner,
       (SELECT COALESCE(json_agg(json_build_array(
                   CASE WHEN x.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(x.grantee)::text END,
                   x.privilege_type, pg_catalog.pg_get_userbyid(x.grantor)::text, x.is_grantable)), '[]')
        FROM aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) x) AS acl,
       (SELECT COALESCE(json_agg(json_build_array(
                   n.oid::int8, n.nspname::text,
                   (SELECT count(*) FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid)
                   + (SELECT count(*) FROM pg_catalog.pg_proc p WHERE p.pronamespace = n.oid))), '[]')
        FROM pg_catalog.pg_namespace n) AS namespaces
FROM pg_catalog.pg_database d
WHERE d.datname = current_database()
