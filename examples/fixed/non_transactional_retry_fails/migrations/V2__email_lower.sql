ALTER TABLE users ADD COLUMN IF NOT EXISTS email_lower text;
UPDATE users SET email_lower = lower(email);
CREATE INDEX IF NOT EXISTS users_email_lower ON users (email_lower);
