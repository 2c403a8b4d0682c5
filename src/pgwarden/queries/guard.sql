-- pgwarden's guard as the server has it: its event trigger, its function and the schema pgwarden
-- keeps it in; read (pgwarden.snapshot) only where database.sql found one of them.
SELECT row_to_json(g) AS guard
FROM (SELECT e.evtenabled::text AS trigger_enabled, e.evtevent::text AS trigger_event,
             e.evtfoid = p.oid AS trigger_calls_function,
             p.prosrc AS source, p.prosecdef AS security_definer, p.proconfig AS config,
             r.rolsuper AS owner_is_superuser, p.proacl::text AS acl,
             n.oid IS NOT NULL AS schema_exists,
             -- what the guard does, beyond its name: the commands it filters on, its language,
             -- who may run it, and who owns and may use its schema (its owner may replace it)
             e.evttags AS trigger_tags,
             (SELECT l.lanname FROM pg_catalog.pg_language l WHERE l.oid = p.prolang)::text AS language,
             p.proacl IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(p.proacl) x
                                                  WHERE x.grantee <> p.proowner) AS function_private,
             (SELECT s.rolsuper FROM pg_catalog.pg_roles s WHERE s.oid = n.nspowner) AS schema_owner_is_superuser,
             NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(n.nspacl) x
                         WHERE x.grantee <> n.nspowner) AS schema_private,
             (SELECT pg_catalog.array_agg(CASE WHEN x.grantee = 0 THEN 'PUBLIC'
                                          ELSE pg_catalog.pg_get_userbyid(x.grantee) END)
              FROM (SELECT DISTINCT y.grantee FROM pg_catalog.aclexplode(n.nspacl) y
                    WHERE y.grantee <> n.nspowner) x) AS schema_grantees,
             -- counted only when the schema exists (each count scans its catalog)
             CASE WHEN n.oid IS NULL THEN 0 ELSE
               (SELECT count(*) FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid)
               + (SELECT count(*) FROM pg_catalog.pg_proc o
                  WHERE o.pronamespace = n.oid AND o.oid <> COALESCE(p.oid, 0))
               + (SELECT count(*) FROM pg_catalog.pg_type ty WHERE ty.typnamespace = n.oid)
             END AS other_objects
      FROM (SELECT 1) one
      LEFT JOIN pg_catalog.pg_event_trigger e ON e.evtname = 'pgwarden_guard'
      LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = 'pgwarden'
      LEFT JOIN pg_catalog.pg_proc p ON p.pronamespace = n.oid AND p.proname = 'guard' AND p.pronargs = 0
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = p.proowner) g
