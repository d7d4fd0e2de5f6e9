ALTER TABLE packages ADD COLUMN keywords text;

CREATE OR REPLACE FUNCTION packages_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.textsearchable := to_tsvector('english',
        NEW.name || ' ' || coalesce(NEW.description, '') || ' ' || coalesce(NEW.keywords, ''));
    RETURN NEW;
END
$$;
