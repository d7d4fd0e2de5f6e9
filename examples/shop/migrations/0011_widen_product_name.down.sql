-- Names longer than 100 characters can only exist if they were written after the up;
-- they are cut to 100 characters so the narrowing cannot fail. Older names are untouched.
ALTER TABLE products ALTER COLUMN name TYPE varchar(100) USING left(name, 100);
