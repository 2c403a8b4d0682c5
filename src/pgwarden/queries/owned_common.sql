-- The objects of this database owned by the listed roles that the snapshot's catalogs name: relations, routines,
-- types (not array, multirange or table row types) and schemas (hazard_owned.sql and hazard_owned_scan.sql).
    SELECT 'pg_catalog.pg_class'::regclass, c.oid, c.relowner, c.relnamespace
    FROM pg_catalog.pg_class c
    WHERE c.relowner = ANY(%(roles)s::oid[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  UNION ALL
    SELECT 'pg_catalog.pg_proc'::regclass, p.oid, p.proowner, p.pronamespace
    FROM pg_catalog.pg_proc p WHERE p.proowner = ANY(%(roles)s::oid[])
  UNION ALL
    SELECT 'pg_catalog.pg_type'::regclass, t.oid, t.typowner, t.typnamespace
    FROM pg_catalog.pg_type t
    WHERE t.typowner = ANY(%(roles)s::oid[]) AND t.typtype IN ('b', 'c', 'd', 'e', 'r')
      AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
  UNION ALL
    SELECT 'pg_catalog.pg_namespace'::regclass, n.oid, n.nspowner, n.oid
    FROM pg_catalog.pg_namespace n WHERE n.nspowner = ANY(%(roles)s::oid[])
