SET LOCAL lock_timeout = '2s';
ALTER TABLE orders ADD CONSTRAINT orders_total_not_negative CHECK (total >= 0) NOT VALID;
