-- Every role each listed role is a member of, by any path (pg_has_role MEMBER), and whether directly.
SELECT a.oid AS member, r.oid AS role,
       EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m WHERE m.member = a.oid AND m.roleid = r.oid) AS direct
FROM pg_catalog.pg_roles a
JOIN pg_catalog.pg_roles r ON r.oid <> a.oid AND pg_has_role(a.oid, r.oid, 'MEMBER')
WHERE a.oid = ANY(%(roles)s::oid[]) AND NOT a.rolsuper
ORDER BY a.oid, r.oid
