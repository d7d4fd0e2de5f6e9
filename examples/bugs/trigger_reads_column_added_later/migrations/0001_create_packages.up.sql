CREATE TABLE packages (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    description text
);
