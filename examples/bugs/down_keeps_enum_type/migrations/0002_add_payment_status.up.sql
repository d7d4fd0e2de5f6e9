DO $$
BEGIN
    CREATE TYPE payment_status AS ENUM ('unpaid', 'authorized', 'captured', 'refunded');
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;

ALTER TABLE orders ADD COLUMN payment_status payment_status NOT NULL DEFAULT 'unpaid';
