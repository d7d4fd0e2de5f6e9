DROP INDEX customers_email_lower_idx;
-- BUG: "the old code compares emails case-sensitively, so store them lowercased again":
-- rewrites every e-mail address that was stored with capitals before the up.
UPDATE customers SET email = lower(email) WHERE email <> lower(email);
