-- A validated constraint cannot be marked NOT VALID again in place: re-create it exactly
-- as 0008 left it, so the schema (including convalidated = false) is what it was.
ALTER TABLE orders DROP CONSTRAINT orders_shipping_address_id_fkey;
ALTER TABLE orders
    ADD CONSTRAINT orders_shipping_address_id_fkey
    FOREIGN KEY (shipping_address_id) REFERENCES addresses (id) ON DELETE SET NULL
    NOT VALID;
