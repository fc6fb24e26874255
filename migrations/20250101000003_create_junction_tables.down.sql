DROP TABLE server_members_roles;
DROP TABLE server_members;
