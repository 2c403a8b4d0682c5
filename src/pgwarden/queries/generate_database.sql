-- init --from-database: this database's owner and ACL, its schemas (owner, ACL, whether an
-- extension made it, whether it holds anything), and its default privileges, all by role name
-- (NULL grantee: PUBLIC; each ACL entry [grantee, privilege, grantor, grantable], as acl.Grant).
SELECT pg_catalog.pg_get_userbyid(d.datdba)::text AS owner,
       (SELECT COALESCE(json_agg(json_build_array(
                   CASE WHEN x.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(x.grantee)::text END,
                   x.privilege_type, pg_catalog.pg_get_userbyid(x.grantor)::text, x.is_grantable)), '[]')
        FROM aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) x) AS acl,
       (SELECT COALESCE(json_agg(json_build_object(
                   'name', n.nspname::text, 'owner', pg_catalog.pg_get_userbyid(n.nspowner)::text,
                   'extension', EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                                        WHERE e.classid = 'pg_catalog.pg_namespace'::regclass
                                          AND e.objid = n.oid AND e.deptype = 'e'),
                   'objects', (SELECT count(*) FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid)
                              + (SELECT count(*) FROM pg_catalog.pg_proc p WHERE p.pronamespace = n.oid),
                   'acl', (SELECT COALESCE(json_agg(json_build_array(
                                      CASE WHEN x.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(x.grantee)::text END,
                                      x.privilege_type, pg_catalog.pg_get_userbyid(x.grantor)::text, x.is_grantable)), '[]')
                           FROM aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) x))
                 ORDER BY n.nspname), '[]')
        FROM pg_catalog.pg_namespace n
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'pgwarden', 'pgwarden_ledger')
          AND n.nspname NOT LIKE 'pg\_temp\_%%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%%') AS schemas,
       (SELECT COALESCE(json_agg(json_build_object(
                   'role', pg_catalog.pg_get_userbyid(a.defaclrole)::text,
                   'schema', CASE WHEN a.defaclnamespace = 0 THEN NULL ELSE (SELECT n.nspname::text FROM pg_catalog.pg_namespace n WHERE n.oid = a.defaclnamespace) END,
                   'objtype', a.defaclobjtype::text,
                   'acl', (SELECT COALESCE(json_agg(json_build_array(
                                      CASE WHEN x.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(x.grantee)::text END,
                                      x.privilege_type, pg_catalog.pg_get_userbyid(x.grantor)::text, x.is_grantable)), '[]')
                           FROM aclexplode(a.defaclacl) x))), '[]')
        FROM pg_catalog.pg_default_acl a) AS default_acls
FROM pg_catalog.pg_database d
WHERE d.datname = current_database()
