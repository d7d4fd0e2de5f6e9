SET LOCAL lock_timeout = '2s';
ALTER TABLE orders DROP CONSTRAINT orders_total_not_negative;
