CREATE TABLE orders (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    total            numeric(12,4) NOT NULL DEFAULT 0,
    shipping_address text NOT NULL,
    placed_at        timestamptz NOT NULL DEFAULT now()
);
