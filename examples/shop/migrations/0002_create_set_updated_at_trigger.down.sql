DROP TRIGGER customers_set_updated_at ON customers;
DROP FUNCTION set_updated_at();
