CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer text NOT NULL,
    total_cents integer NOT NULL
);
CREATE MATERIALIZED VIEW order_totals AS
    SELECT customer, sum(total_cents) AS total_cents FROM orders GROUP BY customer;
