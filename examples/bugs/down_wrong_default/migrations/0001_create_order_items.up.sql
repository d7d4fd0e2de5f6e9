CREATE TABLE order_items (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id   bigint NOT NULL,
    sku        varchar(40) NOT NULL,
    quantity   integer NOT NULL DEFAULT 1,
    unit_price numeric(12,4) NOT NULL
);
