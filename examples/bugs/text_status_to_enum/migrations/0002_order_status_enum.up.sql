CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'cancelled');

-- BUG: status was free text; any value that is not exactly one of the labels
-- ('Paid', 'PENDING', 'on hold', '') makes the cast fail.
ALTER TABLE orders
    ALTER COLUMN status DROP DEFAULT,
    ALTER COLUMN status TYPE order_status USING status::order_status,
    ALTER COLUMN status SET DEFAULT 'pending';
