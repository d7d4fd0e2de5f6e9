ALTER TABLE packages ADD COLUMN keywords text;
