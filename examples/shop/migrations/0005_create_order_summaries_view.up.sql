-- Read model for the back office order list.
CREATE VIEW order_summaries AS
SELECT o.id,
       o.order_number,
       o.status,
       o.placed_at,
       c.full_name AS customer_name,
       c.email AS customer_email,
       o.total,
       count(i.id) AS item_count
FROM orders o
LEFT JOIN customers c ON c.id = o.customer_id
LEFT JOIN order_items i ON i.order_id = o.id
GROUP BY o.id, c.id;

COMMENT ON VIEW order_summaries IS 'One row per order with its customer and number of lines';
