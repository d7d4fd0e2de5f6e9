-- BUG: sku was never unique, so existing products may share one; there is no
-- de-duplication step before the constraint.
ALTER TABLE products ADD CONSTRAINT products_sku_key UNIQUE (sku);
