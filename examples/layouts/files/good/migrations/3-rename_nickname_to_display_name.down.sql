ALTER TABLE customers RENAME COLUMN display_name TO nickname;
