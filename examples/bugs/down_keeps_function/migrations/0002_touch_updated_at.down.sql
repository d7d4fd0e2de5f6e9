-- BUG: drops the trigger but forgets the function set_updated_at().
DROP TRIGGER customers_set_updated_at ON customers;
