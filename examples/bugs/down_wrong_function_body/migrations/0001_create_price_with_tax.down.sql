DROP FUNCTION price_with_tax(numeric);
DROP TABLE products;
