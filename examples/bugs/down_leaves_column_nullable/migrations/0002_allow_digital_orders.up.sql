-- Digital goods are not shipped: they have no address.
ALTER TABLE orders ADD COLUMN is_digital boolean NOT NULL DEFAULT false;
ALTER TABLE orders ALTER COLUMN shipping_address DROP NOT NULL;
