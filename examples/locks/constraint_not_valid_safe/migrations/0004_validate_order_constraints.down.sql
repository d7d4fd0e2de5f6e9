-- validated constraints cannot be un-validated; drop and re-add them NOT VALID
SET LOCAL lock_timeout = '2s';
ALTER TABLE orders DROP CONSTRAINT orders_total_not_negative;
ALTER TABLE orders ADD CONSTRAINT orders_total_not_negative CHECK (total >= 0) NOT VALID;
ALTER TABLE orders DROP CONSTRAINT orders_customer_id_fkey;
ALTER TABLE orders ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
