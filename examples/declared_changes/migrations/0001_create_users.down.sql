DROP TABLE users;
DROP TABLE user_audit;
DROP FUNCTION audit_user();
