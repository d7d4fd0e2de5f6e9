-- Create "orders" table
CREATE TABLE "orders" ("id" bigint NOT NULL GENERATED ALWAYS AS IDENTITY, "customer_id" bigint NULL, "total" numeric(12,2) NOT NULL DEFAULT 0, "placed_at" timestamptz NOT NULL DEFAULT now(), PRIMARY KEY ("id"), CONSTRAINT "orders_customer_id_fkey" FOREIGN KEY ("customer_id") REFERENCES "customers" ("id") ON UPDATE NO ACTION ON DELETE NO ACTION);
