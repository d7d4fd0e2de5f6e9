CREATE INDEX orders_customer_id_idx ON orders (customer_id);

---- create above / drop below ----

DROP INDEX orders_customer_id_idx;
