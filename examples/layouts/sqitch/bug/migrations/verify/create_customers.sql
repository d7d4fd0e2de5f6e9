-- Verify shop:create_customers on pg

BEGIN;

SELECT id, email, nickname
  FROM customers
 WHERE FALSE;

ROLLBACK;
