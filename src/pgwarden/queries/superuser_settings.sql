-- Parameters only a superuser (or a role granted SET on them, 15+) may set, but for logging and
-- statistics ones (they change what is recorded, not what a role can do): stored as a role or
-- database setting by a superuser, they apply to every session of that role anyway.
SELECT s.name FROM pg_catalog.pg_settings s
WHERE s.context = 'superuser'
  AND s.category NOT LIKE 'Reporting and Logging%%' AND s.category NOT LIKE 'Statistics%%'
ORDER BY s.name
