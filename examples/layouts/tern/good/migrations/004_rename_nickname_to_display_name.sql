ALTER TABLE customers RENAME COLUMN nickname TO display_name;

---- create above / drop below ----

ALTER TABLE customers RENAME COLUMN display_name TO nickname;
