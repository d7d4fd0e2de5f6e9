CREATE TABLE products (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    stock       integer NOT NULL DEFAULT 0,
    price_cents integer NOT NULL CONSTRAINT products_price_positive CHECK (price_cents > 0)
);
