DROP TABLE invites;
DROP TABLE attachments;
DROP TABLE message_reactions;
