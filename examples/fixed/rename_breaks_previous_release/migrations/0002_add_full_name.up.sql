-- Expand: the new column goes in beside the old one, filled from it, and a trigger keeps the two
-- in step while both releases write, so the previous release's reads and inserts (which know
-- only `name`) keep working during the rolling deploy. Once no code uses `name`, a later
-- release drops it (contract).
ALTER TABLE users ADD COLUMN full_name text;
UPDATE users SET full_name = name;

CREATE FUNCTION users_sync_names() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.full_name IS NULL THEN
        NEW.full_name := NEW.name;
    ELSIF NEW.name IS NULL THEN
        NEW.name := NEW.full_name;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_sync_names BEFORE INSERT OR UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_sync_names();
