DROP INDEX users_email_lower;
ALTER TABLE users DROP COLUMN email_lower;
