CREATE TABLE customers (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email      varchar(255) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    nickname   varchar(100)
);
