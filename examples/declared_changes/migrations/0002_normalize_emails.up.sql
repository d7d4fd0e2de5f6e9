-- On purpose: addresses are stored in lower case from now on. The old spelling is not kept,
-- so the down cannot restore it; migproof.toml declares the change.
UPDATE users SET email = lower(email) WHERE email <> lower(email);
ALTER TABLE users ADD CONSTRAINT users_email_lower CHECK (email = lower(email)) NOT VALID;
