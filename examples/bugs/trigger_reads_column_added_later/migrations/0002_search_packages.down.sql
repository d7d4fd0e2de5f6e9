DROP TRIGGER packages_search ON packages;
DROP FUNCTION packages_search();
ALTER TABLE packages DROP COLUMN textsearchable;
