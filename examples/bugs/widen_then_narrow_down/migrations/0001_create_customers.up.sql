CREATE TABLE customers (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email      varchar(255) NOT NULL,
    phone      varchar(20),
    created_at timestamptz NOT NULL DEFAULT now()
);
