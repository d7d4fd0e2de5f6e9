-- its own transaction: only ROW EXCLUSIVE, reads and writes go on
UPDATE customers SET display_name = coalesce(name, email);
