SET LOCAL lock_timeout = '2s';
ALTER TABLE customers ADD CONSTRAINT customers_email_present CHECK (email IS NOT NULL);
ALTER TABLE customers ALTER COLUMN email DROP NOT NULL;
