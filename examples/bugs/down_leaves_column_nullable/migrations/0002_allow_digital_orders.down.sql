-- BUG: "relaxing a constraint needs no down" -- shipping_address stays nullable.
-- (A correct down fills the NULLs written since the up, then SET NOT NULL.)
ALTER TABLE orders DROP COLUMN is_digital;
