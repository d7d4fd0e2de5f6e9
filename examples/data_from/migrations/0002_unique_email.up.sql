-- Sign-in now looks users up by email, so emails become unique. The team told the seeder what
-- emails look like ([seed] in migproof.toml), and the seeded rows pass; the staging copy holds
-- five accounts that share two addresses, created before the sign-up form checked for them.
CREATE UNIQUE INDEX users_email ON users (email);
