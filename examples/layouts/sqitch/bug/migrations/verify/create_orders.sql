-- Verify shop:create_orders on pg

BEGIN;

SELECT id, customer_id, total, placed_at
  FROM orders
 WHERE FALSE;

ROLLBACK;
