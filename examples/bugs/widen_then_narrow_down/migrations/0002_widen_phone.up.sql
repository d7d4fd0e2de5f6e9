-- Room for extensions and notes such as "+44 20 7946 0958 ext. 1234 (office)".
ALTER TABLE customers ALTER COLUMN phone TYPE varchar(200);
