SET LOCAL lock_timeout = '2s';
ALTER TABLE customers ALTER COLUMN email DROP NOT NULL;
