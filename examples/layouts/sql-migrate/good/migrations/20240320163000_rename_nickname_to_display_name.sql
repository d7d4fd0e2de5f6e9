-- +migrate Up
ALTER TABLE customers RENAME COLUMN nickname TO display_name;

-- +migrate Down
ALTER TABLE customers RENAME COLUMN display_name TO nickname;
