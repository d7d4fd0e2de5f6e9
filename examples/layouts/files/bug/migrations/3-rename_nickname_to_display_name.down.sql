-- BUG: drops the renamed column and adds an empty one back instead of renaming it back;
-- the schema matches again, but every nickname is gone.
ALTER TABLE customers DROP COLUMN display_name;
ALTER TABLE customers ADD COLUMN nickname varchar(100);
