-- BUG: numeric(12,4) -> numeric(10,2) silently rounds every price to cents
-- (1234.5678 becomes 1234.57). The CHECK keeps prices at or below 999999.99, so the
-- rounding can neither overflow nor break the CHECK: the up succeeds and the damage
-- is silent.
ALTER TABLE products ALTER COLUMN price TYPE numeric(10,2);
