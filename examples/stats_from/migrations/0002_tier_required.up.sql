-- Every customer has had a tier since the sign-up form set one; the column becomes NOT NULL.
-- Seeded rows leave a nullable column NULL now and then, so on its own `check` reports this as
-- data dependent; production's statistics (`--stats-from`) say tier is never NULL there, and
-- rows shaped like them let it apply.
ALTER TABLE customers ALTER COLUMN tier SET NOT NULL;
