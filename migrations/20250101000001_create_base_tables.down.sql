DROP TABLE servers;
DROP TABLE users;
