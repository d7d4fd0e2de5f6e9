-- no-transaction
CREATE INDEX CONCURRENTLY orders_customer_email_idx ON orders (customer_email);
