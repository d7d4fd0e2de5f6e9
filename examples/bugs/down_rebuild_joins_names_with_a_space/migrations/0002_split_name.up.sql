-- Splits the name into its first word and the rest; `name` stays until the code stops
-- reading it.
ALTER TABLE people ADD COLUMN first_name text, ADD COLUMN last_name text;
UPDATE people
SET first_name = split_part(name, ' ', 1),
    last_name = nullif(substr(name, length(split_part(name, ' ', 1)) + 2), '');
