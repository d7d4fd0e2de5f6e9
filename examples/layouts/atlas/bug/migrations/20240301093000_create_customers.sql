-- Create "customers" table
CREATE TABLE "customers" ("id" bigint NOT NULL GENERATED ALWAYS AS IDENTITY, "email" character varying(255) NOT NULL, "nickname" character varying(100) NULL, PRIMARY KEY ("id"));
