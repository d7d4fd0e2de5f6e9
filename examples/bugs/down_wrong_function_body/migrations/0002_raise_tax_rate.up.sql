CREATE OR REPLACE FUNCTION price_with_tax(net numeric) RETURNS numeric
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT round(net * 1.21, 4)
$$;
