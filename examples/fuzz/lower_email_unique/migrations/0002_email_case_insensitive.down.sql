ALTER TABLE members ADD CONSTRAINT members_email_key UNIQUE (email);
DROP INDEX members_email_lower_key;
