-- Revert shop:create_orders from pg

BEGIN;

DROP TABLE orders;

COMMIT;
