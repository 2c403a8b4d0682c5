-- The other databases, as the first member of outside_acls.sql's UNION ALL (in place of its
-- databases marker line): every database but %(exclude)s (this one's oid; 0 for a fleet's shared read).
    SELECT 'database', '', 'pg_catalog.pg_database'::regclass, d.oid, d.datdba,
           NULL::name, d.datname, d.datacl, 'd', false
    FROM pg_catalog.pg_database d
    WHERE d.datacl IS NOT NULL AND d.oid <> %(exclude)s::oid
  UNION ALL
