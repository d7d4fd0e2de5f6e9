CREATE TABLE order_items (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id   bigint NOT NULL,
    qty        integer NOT NULL,
    unit_price numeric(12,4) NOT NULL,
    CONSTRAINT order_items_qty_check CHECK (qty > 0)
);
