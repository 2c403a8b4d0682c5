-- init --from-database: memberships by name; inherit_option/set_option exist on 16+ only (read
-- through jsonb: NULL before 16, where inheritance is the member's attribute).
SELECT g.rolname AS role, m.rolname AS member, m.rolinherit AS member_inherit,
       a.admin_option AS admin,
       (to_jsonb(a) ->> 'inherit_option')::boolean AS inherit,
       (to_jsonb(a) ->> 'set_option')::boolean AS set
FROM pg_catalog.pg_auth_members a
JOIN pg_catalog.pg_roles g ON g.oid = a.roleid
JOIN pg_catalog.pg_roles m ON m.oid = a.member
ORDER BY g.rolname, m.rolname
