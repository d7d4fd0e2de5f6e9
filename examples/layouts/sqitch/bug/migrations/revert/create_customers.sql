-- Revert shop:create_customers from pg

BEGIN;

DROP TABLE customers;

COMMIT;
