-- the length cap as a constraint: checked for new rows only, validated later
SET LOCAL lock_timeout = '2s';
ALTER TABLE accounts ADD CONSTRAINT accounts_email_length CHECK (length(email) <= 32) NOT VALID;
