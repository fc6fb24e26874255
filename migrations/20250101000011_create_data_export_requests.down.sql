DROP INDEX idx_data_export_requests_user;
DROP INDEX idx_data_export_requests_queue;
DROP TABLE data_export_requests;
