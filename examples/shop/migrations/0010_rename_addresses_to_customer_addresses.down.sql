ALTER TABLE customer_addresses RENAME TO addresses;
