-- BUG: each statement commits on its own. When the deploy is killed while the index build
-- waits for the busy orders table, order_archive already exists, and every retry fails on
-- CREATE TABLE. It needs IF NOT EXISTS (or -1, one transaction).
CREATE TABLE order_archive (LIKE orders INCLUDING ALL);
CREATE INDEX orders_placed_at_idx ON orders (placed_at);
