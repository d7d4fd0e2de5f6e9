SET LOCAL lock_timeout = '2s';
ALTER TABLE customers DROP COLUMN display_name;
