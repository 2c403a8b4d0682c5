-- Objects of this database (and the database itself) owned by the listed roles, any schema, any kind:
-- relations, routines, types and schemas from their catalogs' owner columns, the other kinds from
-- pg_shdepend's owner entries for this database; the cost follows this database's size, never the
-- cluster's (pg_shdepend holds every ACL reference of these roles in every database: never read by
-- role). pg_shdepend records every owner but the bootstrap superuser (hazard_owned_scan.sql reads
-- every catalog for it).
-- `namespace`: the schema of a relation, routine or type, or the schema itself (the rules skip what the
-- snapshot already covers). Array, multirange and table row types follow their base object and are
-- not listed, like in pg_shdepend. At most 1000 rows.
WITH owned (classid, objid, owner, namespace) AS (
/* include owned_common */
  UNION ALL
    -- every other kind this database keeps: the owner entries pg_shdepend has for its objects in those
    -- catalogs, through its index by database and catalog (the cost follows how many such objects this
    -- database has: a fresh backend opens one catalog instead of fifteen). The role filter stays
    -- outside (OFFSET 0): pushed down, it could take the index by role, whose entries are every ACL
    -- reference of the role in every database.
    SELECT s.classid::regclass, s.objid, s.refobjid, NULL::oid
    FROM (SELECT s.classid, s.objid, s.refclassid, s.refobjid, s.deptype
          FROM pg_catalog.pg_shdepend s
          WHERE s.dbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
            AND s.classid = ANY(ARRAY['pg_catalog.pg_collation', 'pg_catalog.pg_conversion',
                                      'pg_catalog.pg_operator', 'pg_catalog.pg_opclass', 'pg_catalog.pg_opfamily',
                                      'pg_catalog.pg_ts_config', 'pg_catalog.pg_ts_dict',
                                      'pg_catalog.pg_statistic_ext', 'pg_catalog.pg_language',
                                      'pg_catalog.pg_foreign_data_wrapper', 'pg_catalog.pg_foreign_server',
                                      'pg_catalog.pg_event_trigger', 'pg_catalog.pg_publication',
                                      'pg_catalog.pg_extension', 'pg_catalog.pg_largeobject']::regclass[]::oid[])
          OFFSET 0) s
    WHERE s.deptype = 'o' AND s.refclassid = 'pg_catalog.pg_authid'::regclass
      AND s.refobjid = ANY(%(roles)s::oid[])
  UNION ALL
/* include owned_tail */
