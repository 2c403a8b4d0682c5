-- Outside the managed schemas, in one statement (two json columns):
-- `schemas`: who can create objects in each schema of this database (search_path hijack): PUBLIC (0),
-- the direct CREATE grantees, the owner, and which of the listed roles can (memberships included);
-- with the server's default search_path (its configured value; a value from the admin's own role or
-- database settings is not the server's, so the built-in one is used then).
-- `mappings`: user mappings of the listed roles and of PUBLIC (umuser 0) with the remote user they log
-- in as (the `user` option; the view shows options to superusers only, otherwise remote_user is NULL);
-- a user mapping needs a foreign server: where the database has none (server.sql), pgwarden.hazards
-- sends the text up to the mappings marker line with an empty list in its place (no view to plan).
SELECT
  (SELECT COALESCE(json_agg(s ORDER BY s.name), '[]') FROM (
SELECT n.oid, n.nspname AS name, n.nspowner AS owner,
       COALESCE(array_agg(DISTINCT e.grantee) FILTER (WHERE e.grantee IS NOT NULL), '{}') AS grantees,
       COALESCE((SELECT array_agg(r.oid ORDER BY r.oid) FROM pg_catalog.pg_roles r
                 WHERE r.oid = ANY(%(roles)s::oid[]) AND has_schema_privilege(r.oid, n.oid, 'CREATE')), '{}')
           AS creators,
       (SELECT CASE WHEN g.source IN ('default', 'configuration file', 'command line', 'environment variable')
                    THEN g.reset_val ELSE g.boot_val END
        FROM pg_catalog.pg_settings g WHERE g.name = 'search_path') AS default_path
FROM pg_catalog.pg_namespace n
LEFT JOIN LATERAL aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) e
       ON e.privilege_type = 'CREATE' AND e.grantee <> n.nspowner
WHERE n.nspname NOT LIKE 'pg\_%%' AND n.nspname <> 'information_schema'
GROUP BY n.oid, n.nspname, n.nspowner
  ) s) AS schemas,
/* mappings */
  (SELECT COALESCE(json_agg(m ORDER BY m.server, m.role), '[]') FROM (
SELECT u.umuser AS role, u.srvname AS server,
       (SELECT substr(o, 6) FROM unnest(u.umoptions) o WHERE o LIKE 'user=%%' LIMIT 1) AS remote_user
FROM pg_catalog.pg_user_mappings u
WHERE u.umuser = ANY(%(access)s::oid[]) OR u.umuser = 0
  ) m) AS mappings
