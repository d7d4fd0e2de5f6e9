-- Make room for warehouse addresses. Foreign keys, indexes and the identity sequence
-- follow the table; their names stay as they are.
ALTER TABLE addresses RENAME TO customer_addresses;
