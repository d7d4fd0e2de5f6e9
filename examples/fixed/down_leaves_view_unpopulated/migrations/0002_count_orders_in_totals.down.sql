DROP MATERIALIZED VIEW order_totals;
CREATE MATERIALIZED VIEW order_totals AS
    SELECT customer, sum(total_cents) AS total_cents FROM orders GROUP BY customer;
