-- Issue 20: the last consented fill and the last failure, for doctor to report without
-- reading the audit log.
ALTER TABLE wecom_consent_settings ADD COLUMN last_filled_at BIGINT;
ALTER TABLE wecom_consent_settings ADD COLUMN last_failed_at BIGINT;
ALTER TABLE wecom_consent_settings ADD COLUMN last_failure TEXT;
