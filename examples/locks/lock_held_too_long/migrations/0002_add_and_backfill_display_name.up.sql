-- the backfill runs while ADD COLUMN's ACCESS EXCLUSIVE lock is still held
SET LOCAL lock_timeout = '2s';
ALTER TABLE customers ADD COLUMN display_name text;
UPDATE customers SET display_name = coalesce(name, email);
