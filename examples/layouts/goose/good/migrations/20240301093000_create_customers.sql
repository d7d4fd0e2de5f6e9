-- +goose Up
CREATE TABLE customers (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email    varchar(255) NOT NULL,
    nickname varchar(100)
);

-- +goose Down
DROP TABLE customers;
