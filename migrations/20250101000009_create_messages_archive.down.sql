DROP FUNCTION archive_old_messages(INTEGER);
DROP TABLE messages_archive;
