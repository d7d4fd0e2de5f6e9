ALTER TABLE order_items DROP CONSTRAINT order_items_quantity_check;
ALTER TABLE order_items RENAME COLUMN quantity TO qty;
-- BUG: the original constraint was CHECK (qty > 0); this one lets zero quantities in.
ALTER TABLE order_items ADD CONSTRAINT order_items_qty_check CHECK (qty >= 0);
