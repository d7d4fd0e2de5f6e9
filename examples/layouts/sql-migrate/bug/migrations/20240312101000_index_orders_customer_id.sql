-- +migrate Up
CREATE INDEX orders_customer_id_idx ON orders (customer_id);

-- +migrate Down
DROP INDEX orders_customer_id_idx;
