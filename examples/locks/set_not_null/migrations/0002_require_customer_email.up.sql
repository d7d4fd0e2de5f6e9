SET LOCAL lock_timeout = '2s';
ALTER TABLE customers ALTER COLUMN email SET NOT NULL;
