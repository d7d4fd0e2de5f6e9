DROP INDEX orders_shipping_address_id_idx;
ALTER TABLE orders DROP CONSTRAINT orders_shipping_address_id_fkey;
ALTER TABLE orders DROP COLUMN shipping_address_id;
