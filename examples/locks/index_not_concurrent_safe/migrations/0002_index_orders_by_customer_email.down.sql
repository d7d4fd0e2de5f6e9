-- no-transaction
DROP INDEX CONCURRENTLY orders_customer_email_idx;
