-- Deploy shop:create_customers to pg

BEGIN;

CREATE TABLE customers (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email    varchar(255) NOT NULL,
    nickname varchar(100)
);

COMMIT;
