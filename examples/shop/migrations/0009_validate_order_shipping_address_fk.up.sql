-- Scans orders under a SHARE UPDATE EXCLUSIVE lock only; writes go on meanwhile.
ALTER TABLE orders VALIDATE CONSTRAINT orders_shipping_address_id_fkey;
