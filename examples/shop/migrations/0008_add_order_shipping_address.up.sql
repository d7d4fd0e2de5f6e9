-- New orders record where they ship to. Existing orders keep NULL.
ALTER TABLE orders ADD COLUMN shipping_address_id bigint;

-- NOT VALID: takes no long lock and skips scanning the existing orders now;
-- 0009 validates it separately.
ALTER TABLE orders
    ADD CONSTRAINT orders_shipping_address_id_fkey
    FOREIGN KEY (shipping_address_id) REFERENCES addresses (id) ON DELETE SET NULL
    NOT VALID;

CREATE INDEX orders_shipping_address_id_idx ON orders (shipping_address_id)
    WHERE shipping_address_id IS NOT NULL;

COMMENT ON COLUMN orders.shipping_address_id IS 'Where the order ships to; NULL for older orders and digital goods';
