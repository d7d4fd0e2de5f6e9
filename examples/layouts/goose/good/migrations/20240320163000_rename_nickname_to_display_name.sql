-- +goose Up
ALTER TABLE customers RENAME COLUMN nickname TO display_name;

-- +goose Down
ALTER TABLE customers RENAME COLUMN display_name TO nickname;
