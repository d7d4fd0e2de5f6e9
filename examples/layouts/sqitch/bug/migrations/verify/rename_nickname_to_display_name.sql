-- Verify shop:rename_nickname_to_display_name on pg

BEGIN;

SELECT display_name
  FROM customers
 WHERE FALSE;

ROLLBACK;
