-- pgwarden's guard in this database as the server has it: its event trigger, its function and the
-- schema pgwarden keeps it in (one row; every column NULL or false when there is no guard).
SELECT (SELECT e.evtenabled::text FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'pgwarden_guard') AS trigger_enabled,
       (SELECT e.evtevent::text FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'pgwarden_guard') AS trigger_event,
       (SELECT e.evtfoid = p.oid FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'pgwarden_guard') AS trigger_calls_function,
       p.prosrc AS source, p.prosecdef AS security_definer, p.proconfig AS config,
       r.rolsuper AS owner_is_superuser, p.proacl::text AS acl,
       n.oid IS NOT NULL AS schema_exists,
       (SELECT count(*) FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid)
         + (SELECT count(*) FROM pg_catalog.pg_proc o WHERE o.pronamespace = n.oid AND o.oid <> COALESCE(p.oid, 0))
         + (SELECT count(*) FROM pg_catalog.pg_type t WHERE t.typnamespace = n.oid) AS other_objects
FROM (SELECT 1) one
LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = 'pgwarden'
LEFT JOIN pg_catalog.pg_proc p ON p.pronamespace = n.oid AND p.proname = 'guard' AND p.pronargs = 0
LEFT JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
