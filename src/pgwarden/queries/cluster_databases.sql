-- The databases a pattern (-d 'tenant_*', a [[databases]] name with a glob) can cover: connectable, not a template.
-- Everyone may read pg_database: no privilege needed.
SELECT datname AS name
FROM pg_catalog.pg_database
WHERE datallowconn
  AND NOT datistemplate
  AND datname NOT IN ('template0', 'template1')
ORDER BY 1
