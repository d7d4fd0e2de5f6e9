-- Deploy shop:rename_nickname_to_display_name to pg
-- requires: create_customers

BEGIN;

ALTER TABLE customers RENAME COLUMN nickname TO display_name;

COMMIT;
