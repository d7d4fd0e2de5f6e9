ALTER TABLE orders DROP COLUMN refunded_at;
-- BUG: PostgreSQL has no ALTER TYPE ... DROP VALUE, and this down does not re-create the
-- type either, so order_status keeps the 'refunded' label.
