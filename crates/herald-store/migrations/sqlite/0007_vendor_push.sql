-- A push may ask for no vendor notification (Tencent PushFlag 1): devices get it over their
-- connection only.
ALTER TABLE pushes ADD COLUMN vendor_push INTEGER NOT NULL DEFAULT 1;
