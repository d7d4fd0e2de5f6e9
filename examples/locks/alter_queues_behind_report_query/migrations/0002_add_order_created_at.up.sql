-- No rewrite (now() is evaluated once, so the default is stored in the catalog), so it looks
-- instant; but it asks for ACCESS EXCLUSIVE with no lock_timeout. Behind a long report query
-- the request waits, and every read and write of orders queues behind it.
ALTER TABLE orders ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
