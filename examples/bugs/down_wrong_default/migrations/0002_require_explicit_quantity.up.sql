-- The new checkout always sends a quantity; a silent default of 1 hid client bugs.
ALTER TABLE order_items ALTER COLUMN quantity DROP DEFAULT;
