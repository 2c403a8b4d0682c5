-- The server and the connected role: version, who we are, what we may do.
SELECT current_setting('server_version_num')::int AS version_num,
       current_setting('server_version') AS version,
       current_database() AS database,
       r.oid AS current_role_oid,
       r.rolname AS current_role,
       r.rolsuper AS is_superuser,
       r.rolcreaterole AS can_createrole,
       r.rolcreatedb AS can_createdb,
       has_table_privilege('pg_catalog.pg_authid', 'SELECT') AS can_read_authid
FROM pg_catalog.pg_roles r
WHERE r.rolname = current_user
