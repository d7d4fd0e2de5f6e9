CREATE TYPE payment_method AS ENUM ('card', 'bank_transfer', 'paypal', 'gift_card');

CREATE TABLE payments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     bigint NOT NULL REFERENCES orders (id) ON DELETE RESTRICT,
    method       payment_method NOT NULL,
    amount       numeric(12,4) NOT NULL,
    provider_ref varchar(100),
    details      jsonb NOT NULL DEFAULT '{"captured": false}'::jsonb,
    received_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_amount_check CHECK (amount > 0)
);

CREATE INDEX payments_order_id_idx ON payments (order_id);
-- Providers call back with their reference; look it up only where there is one.
CREATE UNIQUE INDEX payments_provider_ref_key ON payments (provider_ref)
    WHERE provider_ref IS NOT NULL;

COMMENT ON TABLE payments IS 'Money received for an order; an order can be paid in several parts';
COMMENT ON COLUMN payments.details IS 'Raw provider response, kept for disputes';
