-- "full_name" was never a full name: customers type whatever they like to be called.
-- The view order_summaries follows the rename by itself.
ALTER TABLE customers RENAME COLUMN full_name TO display_name;
