-- Role memberships; inherit_option/set_option exist on 16+ only, read them through jsonb.
SELECT m.roleid AS role, m.member, m.grantor, m.admin_option AS admin,
       (to_jsonb(m) ->> 'inherit_option')::boolean AS inherit,
       (to_jsonb(m) ->> 'set_option')::boolean AS set
FROM pg_catalog.pg_auth_members m
ORDER BY m.roleid, m.member, m.grantor
