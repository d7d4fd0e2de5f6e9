-- BUG: the column is placed_at, not placed_on.
CREATE INDEX orders_placed_at_idx ON orders (placed_on);
