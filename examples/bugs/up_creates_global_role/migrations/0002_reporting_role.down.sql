DROP ROLE IF EXISTS reporting_ro;
