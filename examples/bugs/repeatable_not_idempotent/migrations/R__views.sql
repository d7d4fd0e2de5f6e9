CREATE OR REPLACE VIEW settings_view AS SELECT key, value FROM settings;
