DROP TABLE order_items;
-- Dropping orders also drops order_number_seq, which it owns.
DROP TABLE orders;
DROP TYPE order_status;
