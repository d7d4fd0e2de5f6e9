ALTER TABLE packages DROP COLUMN keywords;
