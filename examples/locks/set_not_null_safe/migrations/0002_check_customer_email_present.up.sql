SET LOCAL lock_timeout = '2s';
ALTER TABLE customers ADD CONSTRAINT customers_email_present CHECK (email IS NOT NULL) NOT VALID;
