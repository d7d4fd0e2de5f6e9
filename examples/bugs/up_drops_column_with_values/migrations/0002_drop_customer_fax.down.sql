ALTER TABLE customers ADD COLUMN fax text;
