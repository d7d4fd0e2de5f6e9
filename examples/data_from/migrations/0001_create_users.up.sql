CREATE TABLE users (
    id bigserial PRIMARY KEY,
    email text NOT NULL,
    signed_up_at timestamptz NOT NULL DEFAULT now()
);
