-- Rename the column and its CHECK constraint together.
ALTER TABLE order_items RENAME COLUMN qty TO quantity;
ALTER TABLE order_items DROP CONSTRAINT order_items_qty_check;
ALTER TABLE order_items ADD CONSTRAINT order_items_quantity_check CHECK (quantity > 0);
