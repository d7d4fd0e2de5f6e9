-- Log-in now matches lower(email) = lower($1).
CREATE INDEX customers_email_lower_idx ON customers (lower(email));
