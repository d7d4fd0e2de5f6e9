-- CreateTable
CREATE TABLE "customers" (
    "id" BIGSERIAL NOT NULL,
    "email" VARCHAR(255) NOT NULL,
    "nickname" VARCHAR(100),

    CONSTRAINT "customers_pkey" PRIMARY KEY ("id")
);
