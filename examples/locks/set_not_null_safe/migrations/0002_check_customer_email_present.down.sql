SET LOCAL lock_timeout = '2s';
ALTER TABLE customers DROP CONSTRAINT customers_email_present;
