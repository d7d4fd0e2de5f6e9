-- migrate:up
ALTER TABLE customers RENAME COLUMN nickname TO display_name;

-- migrate:down
ALTER TABLE customers RENAME COLUMN display_name TO nickname;
