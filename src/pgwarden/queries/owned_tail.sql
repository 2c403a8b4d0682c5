-- The end of hazard_owned.sql and hazard_owned_scan.sql: subscriptions of this database and the database
-- itself, then one row per object (at most 1000).
    SELECT 'pg_catalog.pg_subscription'::regclass, o.oid, o.subowner, NULL
    FROM pg_catalog.pg_subscription o
    WHERE o.subowner = ANY(%(roles)s::oid[])
      AND o.subdbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
  UNION ALL
    SELECT 'pg_catalog.pg_database'::regclass, d.oid, d.datdba, NULL
    FROM pg_catalog.pg_database d
    WHERE d.datdba = ANY(%(roles)s::oid[]) AND d.datname = current_database()
)
SELECT o.owner AS role, o.classid::regclass::text AS catalog, o.objid::bigint AS objid,
       pg_catalog.pg_describe_object(o.classid, o.objid, 0) AS object, o.namespace
FROM owned o
ORDER BY 1, 3
LIMIT 1000
