-- Of the leased logins the caller matched, those expired by the server's clock (VALID UNTIL in the past).
SELECT r.oid AS role, r.rolname AS name, r.rolsuper AS superuser
FROM pg_catalog.pg_roles r
WHERE r.oid = ANY (%(roles)s::oid[]) AND r.rolvaliduntil < pg_catalog.now()
ORDER BY r.rolname
