-- A stand-in for the production database whose statistics `--stats-from` reads: 3,000
-- customers, a third of them without a phone, every one with a tier (70% free, 25% pro, 5%
-- team). `psql -f production.sql DB` then `check --stats-from postgres://.../DB`.
CREATE TABLE customers (
    id bigserial PRIMARY KEY,
    email text NOT NULL,
    phone text,
    tier text
);
INSERT INTO customers (email, phone, tier)
SELECT 'c' || n || '@example.com',
       CASE WHEN n % 3 = 0 THEN NULL ELSE '+49 30 ' || (1000000 + n) END,
       CASE WHEN n % 20 < 14 THEN 'free' WHEN n % 20 < 19 THEN 'pro' ELSE 'team' END
FROM generate_series(1, 3000) n;
ANALYZE customers;
