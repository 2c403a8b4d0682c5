-- User mappings of the listed roles and of PUBLIC (umuser 0) with the remote user they log in as
-- (the `user` option; the view shows options to superusers only, otherwise remote_user is NULL).
SELECT m.umuser AS role, m.srvname AS server,
       (SELECT substr(o, 6) FROM unnest(m.umoptions) o WHERE o LIKE 'user=%%' LIMIT 1) AS remote_user
FROM pg_catalog.pg_user_mappings m
WHERE m.umuser = ANY(%(roles)s::oid[]) OR m.umuser = 0
ORDER BY m.srvname, m.umuser
