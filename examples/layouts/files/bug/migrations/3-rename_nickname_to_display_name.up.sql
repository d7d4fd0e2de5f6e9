ALTER TABLE customers RENAME COLUMN nickname TO display_name;
