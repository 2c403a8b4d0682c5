-- The objects of the managed schemas (%(schemas)s) with what sets them apart, said once for the
-- objects queries and object_names.sql (each includes it with an include comment naming object_rows:
-- pgwarden.fetch.query): `rel`, the tables, views, materialized views, foreign tables and
-- sequences; `pro`, the routines. `extension`: a member of an extension (bulk statements would reach
-- it). `linked`: a serial/identity sequence, which follows its table's owner; only asked where the
-- owner is not %(owner)s (an ownership change is planned only there). `bookkeeping`: a migration
-- tool's table (%(bookkeeping)s names, every table of %(bookkeeping_schemas)s) or its sequence:
-- access roles may not write them (pgwarden.bookkeeping). Not materialized: each query reads them
-- once to group, and once more only where it names objects.
-- extension members (few), through pg_depend's index on the referenced object
ext AS MATERIALIZED (
    SELECT d.classid, d.objid FROM pg_catalog.pg_depend d
    WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
),
-- migration bookkeeping relations (few): the tables named %(bookkeeping)s (through pg_class's index on
-- the name), every table and sequence of %(bookkeeping_schemas)s, and the sequences of tables named
-- %(bookkeeping)s (serial, identity: nextval/setval write the history too)
books AS MATERIALIZED (
    SELECT c.oid FROM pg_catalog.pg_class c
    WHERE c.relkind IN ('r', 'p') AND c.relname = ANY(%(bookkeeping)s::name[])
    UNION
    SELECT c.oid FROM pg_catalog.pg_class c
    WHERE cardinality(%(bookkeeping_schemas)s::oid[]) > 0
      AND c.relkind IN ('r', 'p', 'S') AND c.relnamespace = ANY(%(bookkeeping_schemas)s::oid[])
    UNION
    SELECT d.objid FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
    JOIN pg_catalog.pg_class s ON s.oid = d.objid
    WHERE t.relname = ANY(%(bookkeeping)s::name[])
      AND d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
      AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i') AND s.relkind = 'S'
),
-- extension and bookkeeping as lookups in those small sets (hashed subplans): a join made the planner walk
-- pg_class by its oid index, and evaluating the bookkeeping test per row cost a fifth of the query
rel AS NOT MATERIALIZED (
    SELECT c.oid, c.relnamespace AS schema, c.relowner AS owner,
           CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END AS kind,
           c.relkind::text AS subkind, c.relname AS name, c.relacl AS acl,
           c.oid IN (SELECT x.objid FROM ext x WHERE x.classid = 'pg_catalog.pg_class'::regclass) AS extension,
           (c.relkind = 'S' AND c.relowner <> %(owner)s::oid
            AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend linked
                        WHERE linked.classid = 'pg_catalog.pg_class'::regclass AND linked.objid = c.oid
                          AND linked.refobjsubid > 0 AND linked.deptype IN ('a', 'i'))) AS linked,
           c.oid IN (SELECT b.oid FROM books b) AS bookkeeping
    FROM pg_catalog.pg_class c
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND c.relnamespace = ANY(%(schemas)s::oid[])
),
pro AS NOT MATERIALIZED (
    SELECT p.oid, p.pronamespace AS schema, p.proowner AS owner, 'routine' AS kind, p.prokind::text AS subkind,
           p.proname AS name, p.oid AS args_of, p.proacl AS acl,
           p.oid IN (SELECT x.objid FROM ext x WHERE x.classid = 'pg_catalog.pg_proc'::regclass) AS extension,
           false AS linked, false AS bookkeeping
    FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = ANY(%(schemas)s::oid[])
)
