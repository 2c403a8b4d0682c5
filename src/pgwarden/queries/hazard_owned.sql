-- Objects of this database (and the database itself) owned by the listed roles, any schema, any kind.
-- pg_shdepend records every owner except the bootstrap superuser: one query for every catalog.
-- `namespace`: the schema of a relation or routine, or the schema itself (the rules skip what the
-- snapshot already covers). At most 1000 objects per role are listed.
SELECT s.refobjid AS role, s.classid::regclass::text AS catalog,
       pg_catalog.pg_describe_object(s.classid, s.objid, s.objsubid) AS object,
       COALESCE((SELECT c.relnamespace FROM pg_catalog.pg_class c
                 WHERE s.classid = 'pg_catalog.pg_class'::regclass AND c.oid = s.objid),
                (SELECT p.pronamespace FROM pg_catalog.pg_proc p
                 WHERE s.classid = 'pg_catalog.pg_proc'::regclass AND p.oid = s.objid),
                CASE WHEN s.classid = 'pg_catalog.pg_namespace'::regclass THEN s.objid END) AS namespace
FROM unnest(%(roles)s::oid[]) AS r(oid)
-- LATERAL + LIMIT: one (refclassid, refobjid) index lookup per role whatever the planner's
-- estimates, never a scan of the whole cluster's pg_shdepend (millions of rows on a big cluster)
CROSS JOIN LATERAL (
    SELECT d.refobjid, d.classid, d.objid, d.objsubid
    FROM pg_catalog.pg_shdepend d
    WHERE d.refclassid = 'pg_catalog.pg_authid'::regclass AND d.refobjid = r.oid AND d.deptype = 'o'
      AND (d.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
           OR (d.classid = 'pg_catalog.pg_database'::regclass
               AND d.objid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())))
    LIMIT 1000
) s
ORDER BY 1, 3
