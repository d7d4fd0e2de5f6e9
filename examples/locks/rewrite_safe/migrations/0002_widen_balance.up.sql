-- numeric(10,2) -> numeric(12,2): same scale, more precision: no rewrite
SET LOCAL lock_timeout = '2s';
ALTER TABLE accounts ALTER COLUMN balance TYPE numeric(12,2);
