-- What the retired roles hold, by database (dbid 0: shared objects: databases, tablespaces, parameters,
-- memberships they granted), catalog and kind of dependency. pg_shdepend is a shared catalog: this one
-- query, from any database, names every database the retirement must visit. A pinned role (the
-- bootstrap superuser) has no rows at all: it is refused before this runs.
SELECT d.refobjid AS role,
       coalesce(db.datname, '') AS database,
       coalesce(db.datallowconn, true) AS allows_connections,
       coalesce(pg_catalog.has_database_privilege(db.oid, 'CONNECT'), true) AS may_connect,
       d.classid::regclass::text AS catalog,
       d.deptype::text AS deptype,
       count(*)::int AS count
FROM pg_catalog.pg_shdepend d
LEFT JOIN pg_catalog.pg_database db ON db.oid = d.dbid
WHERE d.refclassid = 'pg_catalog.pg_authid'::regclass
  AND d.refobjid = ANY (%(roles)s::oid[])
  AND (d.dbid = 0 OR db.oid IS NOT NULL)
GROUP BY 1, 2, 3, 4, 5, 6
ORDER BY 1, 2, 5, 6
