-- Every default-privileges entry of this database (per database; global rows have schema 0).
SELECT d.defaclrole AS role, d.defaclnamespace AS schema, d.defaclobjtype AS objtype,
       COALESCE((SELECT json_agg(json_build_array(a.grantor, a.grantee, a.privilege_type, a.is_grantable)
                                 ORDER BY a.grantee, a.privilege_type)
                 FROM aclexplode(d.defaclacl) a), '[]') AS acl
FROM pg_catalog.pg_default_acl d
ORDER BY d.defaclrole, d.defaclnamespace, d.defaclobjtype
