CREATE OR REPLACE FUNCTION packages_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.textsearchable := to_tsvector('english',
        NEW.name || ' ' || coalesce(NEW.description, ''));
    RETURN NEW;
END
$$;

ALTER TABLE packages DROP COLUMN keywords;
