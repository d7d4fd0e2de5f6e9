-- Customers: the people who log in and place orders.
CREATE TABLE customers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       varchar(255) NOT NULL,
    full_name   varchar(100) NOT NULL,
    phone       varchar(32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_email_key UNIQUE (email)
);

-- Log-in looks customers up case-insensitively.
CREATE INDEX customers_email_lower_idx ON customers (lower(email));

COMMENT ON TABLE customers IS 'People who can log in and place orders';
COMMENT ON COLUMN customers.email IS 'Log-in e-mail address, stored as the customer typed it';
COMMENT ON COLUMN customers.phone IS 'Optional contact number, free format';
