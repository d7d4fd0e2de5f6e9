-- Verify shop:index_orders_customer_id on pg

BEGIN;

-- Fails with division_by_zero when the index is missing.
SELECT 1 / COUNT(*)
  FROM pg_catalog.pg_indexes
 WHERE tablename = 'orders'
   AND indexname = 'orders_customer_id_idx';

ROLLBACK;
