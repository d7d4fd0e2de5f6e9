ALTER TABLE orders ADD COLUMN shipped_at timestamptz;
CREATE INDEX IF NOT EXISTS orders_customer_id_idx ON orders (customer_id);
