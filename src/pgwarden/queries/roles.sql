-- Every role of the cluster with its attributes (pg_roles: readable by any role).
SELECT r.oid, r.rolname AS name, r.rolsuper AS superuser, r.rolinherit AS inherit,
       r.rolcreaterole AS createrole, r.rolcreatedb AS createdb, r.rolcanlogin AS login,
       r.rolreplication AS replication, r.rolbypassrls AS bypassrls, r.rolconnlimit AS connlimit
FROM pg_catalog.pg_roles r
ORDER BY r.oid
