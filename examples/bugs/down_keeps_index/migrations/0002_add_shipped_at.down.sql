-- BUG: forgets orders_customer_id_idx, which the up created.
ALTER TABLE orders DROP COLUMN shipped_at;
