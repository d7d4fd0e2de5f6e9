-- Full-text search over packages, kept up to date by a trigger. The trigger already reads
-- NEW.keywords, which only the next migration adds: at this version no package can be
-- inserted or updated ("record "new" has no field "keywords""), and rolling back 0003
-- leaves production there.
ALTER TABLE packages ADD COLUMN textsearchable tsvector;

CREATE FUNCTION packages_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.textsearchable := to_tsvector('english',
        NEW.name || ' ' || coalesce(NEW.description, '') || ' ' || coalesce(NEW.keywords, ''));
    RETURN NEW;
END
$$;

CREATE TRIGGER packages_search BEFORE INSERT OR UPDATE ON packages
    FOR EACH ROW EXECUTE FUNCTION packages_search();
