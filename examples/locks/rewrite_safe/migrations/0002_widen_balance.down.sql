SET LOCAL lock_timeout = '2s';
ALTER TABLE accounts ALTER COLUMN balance TYPE numeric(10,2);
