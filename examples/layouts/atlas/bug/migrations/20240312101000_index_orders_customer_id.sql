-- Create index "orders_customer_id_idx" to table: "orders"
CREATE INDEX "orders_customer_id_idx" ON "orders" ("customer_id");
