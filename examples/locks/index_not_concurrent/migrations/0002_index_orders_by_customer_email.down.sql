DROP INDEX orders_customer_email_idx;
