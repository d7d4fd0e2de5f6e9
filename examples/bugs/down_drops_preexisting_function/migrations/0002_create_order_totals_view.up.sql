-- Re-declared (unchanged) so this file reads on its own; 0001 created it.
CREATE OR REPLACE FUNCTION format_money(amount numeric) RETURNS text
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT to_char(amount, 'FM999999990.00')
$$;

CREATE VIEW order_totals AS
SELECT id, placed_at, format_money(total) AS total_display
FROM orders;
