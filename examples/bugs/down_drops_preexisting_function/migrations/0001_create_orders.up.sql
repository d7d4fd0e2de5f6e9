CREATE TABLE orders (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    total     numeric(12,4) NOT NULL DEFAULT 0,
    placed_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION format_money(amount numeric) RETURNS text
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT to_char(amount, 'FM999999990.00')
$$;
