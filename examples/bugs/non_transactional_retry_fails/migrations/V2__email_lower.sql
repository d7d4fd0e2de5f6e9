ALTER TABLE users ADD COLUMN email_lower text;
UPDATE users SET email_lower = lower(email);
CREATE INDEX users_email_lower ON users (email_lower);
