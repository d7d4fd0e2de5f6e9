-- Revert shop:index_orders_customer_id from pg

BEGIN;

DROP INDEX orders_customer_id_idx;

COMMIT;
