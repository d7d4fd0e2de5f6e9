ALTER TABLE products DROP CONSTRAINT products_price_not_negative;
-- BUG: fails with "check constraint ... is violated by some row" as soon as a free product
-- has been written since the up.
ALTER TABLE products ADD CONSTRAINT products_price_positive CHECK (price_cents > 0);
