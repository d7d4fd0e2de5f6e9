-- Full-text search over packages, kept up to date by a trigger that reads only the columns
-- that exist at this version; 0003 extends it when it adds keywords.
ALTER TABLE packages ADD COLUMN textsearchable tsvector;

CREATE FUNCTION packages_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.textsearchable := to_tsvector('english',
        NEW.name || ' ' || coalesce(NEW.description, ''));
    RETURN NEW;
END
$$;

CREATE TRIGGER packages_search BEFORE INSERT OR UPDATE ON packages
    FOR EACH ROW EXECUTE FUNCTION packages_search();
