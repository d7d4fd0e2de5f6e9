DROP FUNCTION format_money(numeric);
DROP TABLE orders;
