DROP INDEX orders_placed_at_idx;
DROP TABLE order_archive;
