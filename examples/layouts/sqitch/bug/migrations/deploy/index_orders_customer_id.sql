-- Deploy shop:index_orders_customer_id to pg
-- requires: create_orders

BEGIN;

CREATE INDEX orders_customer_id_idx ON orders (customer_id);

COMMIT;
