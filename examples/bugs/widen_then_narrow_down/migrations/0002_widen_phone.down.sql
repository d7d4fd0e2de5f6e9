-- BUG: fails with "value too long for type character varying(20)" as soon as a
-- longer phone number has been written since the up.
ALTER TABLE customers ALTER COLUMN phone TYPE varchar(20);
