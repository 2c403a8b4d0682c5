-- Every role of the cluster with its attributes (pg_roles and pg_shdescription: readable by any role).
-- VALID UNTIL twice: as local time in the session's TimeZone (what a policy date without an offset
-- means, as PostgreSQL reads it) and as an epoch (for a policy timestamp with an offset).
SELECT r.oid, r.rolname AS name, r.rolsuper AS superuser, r.rolinherit AS inherit,
       r.rolcreaterole AS createrole, r.rolcreatedb AS createdb, r.rolcanlogin AS login,
       r.rolreplication AS replication, r.rolbypassrls AS bypassrls, r.rolconnlimit AS connlimit,
       CASE WHEN r.rolvaliduntil IS NULL THEN NULL
            WHEN NOT pg_catalog.isfinite(r.rolvaliduntil) THEN r.rolvaliduntil::text
            ELSE pg_catalog.to_char(r.rolvaliduntil, 'YYYY-MM-DD"T"HH24:MI:SS.US') END AS valid_until,
       CASE WHEN pg_catalog.isfinite(r.rolvaliduntil)
            THEN pg_catalog.date_part('epoch', r.rolvaliduntil) END AS valid_until_epoch,
       pg_catalog.shobj_description(r.oid, 'pg_authid') AS comment
FROM pg_catalog.pg_roles r
ORDER BY r.oid
