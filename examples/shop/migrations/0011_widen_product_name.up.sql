-- Supplier names do not fit in 100 characters. varchar(100) -> varchar(200) needs no
-- table rewrite and every existing value fits.
ALTER TABLE products ALTER COLUMN name TYPE varchar(200);
