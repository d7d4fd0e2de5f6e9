-- BUG: NOT NULL without a default works on an empty table (and in every test that
-- starts from one) but fails on any table that already has rows.
ALTER TABLE customers ADD COLUMN country char(2) NOT NULL;
