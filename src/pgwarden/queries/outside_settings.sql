-- The parameters only a superuser may set, but for logging and statistics ones (they change what is
-- recorded, not what a role can do), as rows of kind `superuser_setting` (ident: the name): a UNION
-- ALL member of outside_acls.sql (in place of its settings marker line). A server's list, the same
-- in each of its databases when they load the same libraries (server.sql's `compat`): a fleet reads
-- it once (pgwarden.shared), with the column names of outside_acls.sql's rows.
UNION ALL
SELECT 'superuser_setting' AS kind, '' AS subkind, 0::oid AS oid, 0::oid AS owner, s.name AS ident,
       0::oid AS grantor, 0::oid AS grantee, '' AS privilege, false AS grantable, true AS system
FROM pg_catalog.pg_settings s
WHERE s.context = 'superuser'
  AND s.category NOT LIKE 'Reporting and Logging%%' AND s.category NOT LIKE 'Statistics%%'
