CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'cancelled');

CREATE TABLE orders (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status    order_status NOT NULL DEFAULT 'pending',
    total     numeric(12,4) NOT NULL DEFAULT 0,
    placed_at timestamptz NOT NULL DEFAULT now()
);
