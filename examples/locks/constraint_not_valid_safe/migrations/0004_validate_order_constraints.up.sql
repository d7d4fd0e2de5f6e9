ALTER TABLE orders VALIDATE CONSTRAINT orders_total_not_negative;
ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_fkey;
