--liquibase formatted sql

--changeset shop:create-customers
CREATE TABLE customers (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email    varchar(255) NOT NULL,
    nickname varchar(100)
);
--rollback DROP TABLE customers;

--changeset shop:create-orders
CREATE TABLE orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint REFERENCES customers (id),
    total       numeric(12,2) NOT NULL DEFAULT 0,
    placed_at   timestamptz NOT NULL DEFAULT now()
);
--rollback DROP TABLE orders;

--changeset shop:index-orders-customer-id
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
--rollback DROP INDEX orders_customer_id_idx;

--changeset shop:rename-nickname-to-display-name
ALTER TABLE customers RENAME COLUMN nickname TO display_name;
--rollback ALTER TABLE customers RENAME COLUMN display_name TO nickname;
