ALTER TABLE orders
    ALTER COLUMN status DROP DEFAULT,
    ALTER COLUMN status TYPE text USING status::text,
    ALTER COLUMN status SET DEFAULT 'pending';
DROP TYPE order_status;
