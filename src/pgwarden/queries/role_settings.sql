-- Per-role settings (ALTER ROLE ... [IN DATABASE ...] SET) that apply in this database (with
-- %(all_databases)s: in every database, for a fleet's cluster-level part read once).
SELECT s.setrole AS role, s.setdatabase AS database, s.setconfig AS settings
FROM pg_catalog.pg_db_role_setting s
WHERE %(all_databases)s::boolean
   OR s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()))
ORDER BY s.setrole, s.setdatabase
