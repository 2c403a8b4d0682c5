-- Default privileges defined by %(role)s in the current database, one row per grantee and privilege
-- (grantee 0 is PUBLIC); the role's entries for itself are left out (they come back by default).
SELECT n.nspname::text AS schema, d.defaclobjtype::text AS objtype,
       CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END AS grantee,
       a.privilege_type::text AS privilege, a.is_grantable AS grantable
FROM pg_catalog.pg_default_acl d
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) a
WHERE d.defaclrole = %(role)s::oid AND a.grantee <> d.defaclrole
ORDER BY n.nspname NULLS FIRST, d.defaclobjtype, grantee NULLS FIRST, a.privilege_type
