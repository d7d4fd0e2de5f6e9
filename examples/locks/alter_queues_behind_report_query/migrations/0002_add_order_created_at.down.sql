ALTER TABLE orders DROP COLUMN created_at;
