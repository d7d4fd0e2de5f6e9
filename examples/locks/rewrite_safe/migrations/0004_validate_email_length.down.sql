-- a validated constraint cannot be un-validated; drop and re-add it NOT VALID
SET LOCAL lock_timeout = '2s';
ALTER TABLE accounts DROP CONSTRAINT accounts_email_length;
ALTER TABLE accounts ADD CONSTRAINT accounts_email_length CHECK (length(email) <= 32) NOT VALID;
