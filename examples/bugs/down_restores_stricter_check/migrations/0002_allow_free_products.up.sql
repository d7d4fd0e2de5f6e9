-- Free samples: a price of zero is now allowed. Only a constraint changes; no column does.
ALTER TABLE products DROP CONSTRAINT products_price_positive;
ALTER TABLE products ADD CONSTRAINT products_price_not_negative CHECK (price_cents >= 0);
