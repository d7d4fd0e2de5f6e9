DROP VIEW order_totals;
-- BUG: format_money() belongs to 0001; this up only re-declared it.
DROP FUNCTION format_money(numeric);
