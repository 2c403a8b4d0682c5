-- PgBouncer's lookup routine as this database has it (schema, routine, who may use them), and what its
-- auth_user can read itself: rolpassword of pg_authid or passwd of pg_shadow, column by column (a
-- superuser, pg_read_all_data, or a grant give it), and the roles through which it reads them.
SELECT n.oid IS NOT NULL AS schema_exists,
       (SELECT s.rolsuper FROM pg_catalog.pg_roles s WHERE s.oid = n.nspowner) AS schema_owner_is_superuser,
       ARRAY(SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(x.grantee) END
                    || ':' || x.privilege_type
             FROM pg_catalog.aclexplode(n.nspacl) x WHERE x.grantee <> n.nspowner ORDER BY 1) AS schema_grants,
       p.oid IS NOT NULL AS function_exists,
       p.prosrc AS source,
       (SELECT l.lanname::text FROM pg_catalog.pg_language l WHERE l.oid = p.prolang) AS language,
       p.prosecdef AS security_definer,
       p.proconfig AS config,
       CASE WHEN p.oid IS NOT NULL THEN pg_catalog.pg_get_function_result(p.oid) END AS result,
       CASE WHEN p.oid IS NOT NULL THEN pg_catalog.pg_get_function_identity_arguments(p.oid) END AS arguments,
       (SELECT s.rolsuper FROM pg_catalog.pg_roles s WHERE s.oid = p.proowner) AS owner_is_superuser,
       ARRAY(SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(x.grantee) END
                    || ':' || x.privilege_type
             FROM pg_catalog.aclexplode(COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))) x
             WHERE p.oid IS NOT NULL AND x.grantee <> p.proowner ORDER BY 1) AS function_grants,
       (SELECT count(*)::int FROM pg_catalog.pg_proc o WHERE o.pronamespace = n.oid AND o.proname = %(function)s)
         AS overloads,
       a.rolsuper AS auth_superuser,
       CASE WHEN a.oid IS NOT NULL THEN
         pg_catalog.has_column_privilege(a.oid, 'pg_catalog.pg_authid', 'rolpassword', 'SELECT')
         OR pg_catalog.has_column_privilege(a.oid, 'pg_catalog.pg_shadow', 'passwd', 'SELECT') END AS auth_reads_secrets,
       ARRAY(SELECT b.rolname::text FROM pg_catalog.pg_roles b
             WHERE a.oid IS NOT NULL AND b.oid <> a.oid AND pg_catalog.pg_has_role(a.oid, b.oid, 'USAGE')
               AND (pg_catalog.has_column_privilege(b.oid, 'pg_catalog.pg_authid', 'rolpassword', 'SELECT')
                    OR pg_catalog.has_column_privilege(b.oid, 'pg_catalog.pg_shadow', 'passwd', 'SELECT'))
             ORDER BY 1) AS auth_reads_through,
       ARRAY(SELECT b.rolname::text FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles b ON b.oid = m.roleid
             WHERE m.member = a.oid ORDER BY 1) AS auth_member_of
FROM (SELECT 1) one
LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = %(schema)s
LEFT JOIN LATERAL (SELECT * FROM pg_catalog.pg_proc q
                   WHERE q.pronamespace = n.oid AND q.proname = %(function)s ORDER BY q.oid LIMIT 1) p ON true
LEFT JOIN pg_catalog.pg_roles a ON a.rolname = %(auth_user)s
