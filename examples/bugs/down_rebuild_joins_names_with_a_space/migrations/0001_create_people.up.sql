CREATE TABLE people (
    id serial PRIMARY KEY,
    name text NOT NULL
);
