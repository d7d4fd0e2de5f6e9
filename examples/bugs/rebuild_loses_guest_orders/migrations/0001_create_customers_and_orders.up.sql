CREATE TABLE customers (
    id   bigint PRIMARY KEY,
    name varchar(100) NOT NULL
);

CREATE TABLE orders (
    id          bigint PRIMARY KEY,
    -- NULL for guest checkouts.
    customer_id bigint REFERENCES customers (id),
    total       numeric(12,4) NOT NULL
);
