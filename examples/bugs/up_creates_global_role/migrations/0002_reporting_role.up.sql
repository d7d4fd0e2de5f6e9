-- The reporting dashboard reads with a role of its own. Roles belong to the whole server,
-- not to this database: on a server holding a second database of this schema (staging next
-- to test, a second tenant) this up fails with "role already exists", and the down drops the
-- role from under every other database.
CREATE ROLE reporting_ro NOLOGIN;
