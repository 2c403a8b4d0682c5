-- Stored password verifiers of the named roles (needs SELECT on pg_authid: superuser only).
SELECT a.oid, a.rolpassword AS password
FROM pg_catalog.pg_authid a
WHERE a.rolname = ANY(%(names)s::text[])
ORDER BY a.oid
