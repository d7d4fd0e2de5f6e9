DROP TRIGGER users_sync_names ON users;
DROP FUNCTION users_sync_names();
ALTER TABLE users DROP COLUMN full_name;
