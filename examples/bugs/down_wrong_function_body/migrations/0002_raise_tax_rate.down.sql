-- BUG: meant to restore the 0001 body, but rounds to 2 places instead of 4.
CREATE OR REPLACE FUNCTION price_with_tax(net numeric) RETURNS numeric
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT round(net * 1.20, 2)
$$;
