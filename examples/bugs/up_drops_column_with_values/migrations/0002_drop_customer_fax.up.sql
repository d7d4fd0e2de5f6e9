-- Nobody sends faxes any more.
ALTER TABLE customers DROP COLUMN fax;
