CREATE INDEX orders_customer_email_idx ON orders (customer_email);
