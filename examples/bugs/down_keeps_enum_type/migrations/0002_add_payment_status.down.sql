-- BUG: drops the column but forgets DROP TYPE payment_status.
ALTER TABLE orders DROP COLUMN payment_status;
