-- init --from-database: every role but the predefined ones, with what a policy declares of it:
-- attributes, VALID UNTIL, comment, and its settings for all databases and this one.
SELECT r.oid, r.rolname AS name, r.rolsuper AS superuser, r.rolinherit AS inherit, r.rolcanlogin AS login,
       r.rolcreatedb AS createdb, r.rolcreaterole AS createrole, r.rolreplication AS replication,
       r.rolbypassrls AS bypassrls, r.rolconnlimit AS connlimit,
       CASE WHEN r.rolvaliduntil IS NULL THEN NULL
            WHEN r.rolvaliduntil = 'infinity' THEN 'infinity'
            -- a date when it is midnight where the server is (what VALID UNTIL 'date' stores), else the instant
            WHEN r.rolvaliduntil = date_trunc('day', r.rolvaliduntil) THEN to_char(r.rolvaliduntil, 'YYYY-MM-DD')
            ELSE to_char(r.rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"') END AS valid_until,
       pg_catalog.shobj_description(r.oid, 'pg_authid') AS comment,
       (SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s
        WHERE s.setrole = r.oid AND s.setdatabase = 0) AS settings,
       (SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
        WHERE s.setrole = r.oid AND d.datname = current_database()) AS database_settings
FROM pg_catalog.pg_roles r
WHERE r.rolname !~ '^pg_'
ORDER BY r.rolname
