-- One database: owner and ACL (NULL ACL means the built-in default, made explicit here).
SELECT d.oid, d.datname AS name, d.datdba AS owner,
       COALESCE((SELECT json_agg(json_build_array(a.grantor, a.grantee, a.privilege_type, a.is_grantable)
                                 ORDER BY a.grantee, a.privilege_type)
                 FROM aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) a), '[]') AS acl
FROM pg_catalog.pg_database d
WHERE d.datname = %(name)s
