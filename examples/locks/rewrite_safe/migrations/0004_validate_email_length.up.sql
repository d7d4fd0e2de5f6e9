ALTER TABLE accounts VALIDATE CONSTRAINT accounts_email_length;
