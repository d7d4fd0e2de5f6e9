CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled');

-- Human-facing order numbers, separate from the surrogate key.
CREATE SEQUENCE order_number_seq AS bigint START WITH 100001;

CREATE TABLE orders (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_number  bigint NOT NULL DEFAULT nextval('order_number_seq'),
    -- NULL for guest checkouts and for customers who deleted their account.
    customer_id   bigint REFERENCES customers (id) ON DELETE SET NULL,
    status        order_status NOT NULL DEFAULT 'pending',
    total         numeric(12,4) NOT NULL DEFAULT 0,
    note          text,
    placed_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_order_number_key UNIQUE (order_number),
    CONSTRAINT orders_total_check CHECK (total >= 0)
);

ALTER SEQUENCE order_number_seq OWNED BY orders.order_number;

CREATE INDEX orders_customer_id_idx ON orders (customer_id);
-- The fulfilment queue only ever looks at pending orders.
CREATE INDEX orders_pending_placed_at_idx ON orders (placed_at) WHERE status = 'pending';

CREATE TABLE order_items (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    -- NULL once the product has been removed from the catalogue.
    product_id  bigint REFERENCES products (id) ON DELETE SET NULL,
    quantity    integer NOT NULL,
    unit_price  numeric(12,4) NOT NULL,
    CONSTRAINT order_items_quantity_check CHECK (quantity > 0),
    CONSTRAINT order_items_unit_price_check CHECK (unit_price >= 0)
);

CREATE INDEX order_items_order_id_idx ON order_items (order_id);
CREATE INDEX order_items_product_id_idx ON order_items (product_id);

COMMENT ON TABLE orders IS 'One checkout of a basket';
COMMENT ON COLUMN orders.order_number IS 'Number printed on invoices and e-mails';
COMMENT ON COLUMN orders.total IS 'Order total in the shop currency, 4 decimal places';
COMMENT ON TABLE order_items IS 'Lines of an order; unit_price is frozen at checkout';
