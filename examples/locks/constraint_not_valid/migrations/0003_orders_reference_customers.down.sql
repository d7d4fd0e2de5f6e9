SET LOCAL lock_timeout = '2s';
ALTER TABLE orders DROP CONSTRAINT orders_customer_id_fkey;
