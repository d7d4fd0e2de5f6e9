-- BUG: a NOT NULL column without a default applies to an empty table and fails as
-- soon as customers holds a row.
ALTER TABLE customers ADD COLUMN country char(2) NOT NULL;
