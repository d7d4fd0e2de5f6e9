-- Rebuild the table without the column, keeping the ids.
CREATE TABLE accounts_old (
    id bigserial PRIMARY KEY,
    name text NOT NULL
);
INSERT INTO accounts_old (id, name) SELECT id, name FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_old RENAME TO accounts;
ALTER SEQUENCE accounts_old_id_seq RENAME TO accounts_id_seq;
ALTER INDEX accounts_old_pkey RENAME TO accounts_pkey;
SELECT setval('accounts_id_seq', coalesce((SELECT max(id) FROM accounts), 0) + 1, false);
