-- Live sessions of the retired roles in every database (pg_stat_activity is cluster-wide), not ours.
SELECT a.usename AS role, count(*)::int AS sessions
FROM pg_catalog.pg_stat_activity a
WHERE a.usename = ANY (%(names)s::text[]) AND a.pid <> pg_catalog.pg_backend_pid()
GROUP BY 1
ORDER BY 1
