-- Rebuilds the name from its parts where they were filled in: "Ann" comes back as "Ann "
-- and an empty name as " ".
UPDATE people SET name = first_name || ' ' || coalesce(last_name, '')
WHERE first_name IS NOT NULL;
ALTER TABLE people DROP COLUMN first_name, DROP COLUMN last_name;
