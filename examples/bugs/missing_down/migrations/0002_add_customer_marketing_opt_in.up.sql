-- BUG (of process): no 0002_add_customer_marketing_opt_in.down.sql was written.
ALTER TABLE customers ADD COLUMN marketing_opt_in boolean NOT NULL DEFAULT false;
