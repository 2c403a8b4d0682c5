-- Objects of this database (and the database itself) owned by the listed roles, any schema, any kind.
-- pg_shdepend records every owner except the bootstrap superuser: one query for every catalog.
-- `namespace`: the schema of a relation or routine, or the schema itself (the rules skip what the
-- snapshot already covers).
SELECT s.refobjid AS role, s.classid::regclass::text AS catalog,
       pg_catalog.pg_describe_object(s.classid, s.objid, s.objsubid) AS object,
       COALESCE((SELECT c.relnamespace FROM pg_catalog.pg_class c
                 WHERE s.classid = 'pg_catalog.pg_class'::regclass AND c.oid = s.objid),
                (SELECT p.pronamespace FROM pg_catalog.pg_proc p
                 WHERE s.classid = 'pg_catalog.pg_proc'::regclass AND p.oid = s.objid),
                CASE WHEN s.classid = 'pg_catalog.pg_namespace'::regclass THEN s.objid END) AS namespace
FROM pg_catalog.pg_shdepend s
WHERE s.deptype = 'o' AND s.refobjid = ANY(%(roles)s::oid[])
  AND (s.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
       OR (s.classid = 'pg_catalog.pg_database'::regclass
           AND s.objid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())))
ORDER BY 1, 3
LIMIT 1000
