-- Allowed in a transaction since PostgreSQL 12, as long as the new label is not used in it.
ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded' AFTER 'shipped';
ALTER TABLE orders ADD COLUMN refunded_at timestamptz;
