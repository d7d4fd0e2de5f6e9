-- the valid CHECK proves the column has no NULL: SET NOT NULL skips the scan
SET LOCAL lock_timeout = '2s';
ALTER TABLE customers ALTER COLUMN email SET NOT NULL;
ALTER TABLE customers DROP CONSTRAINT customers_email_present;
