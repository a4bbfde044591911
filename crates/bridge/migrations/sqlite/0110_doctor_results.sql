-- Issue 17: doctor's last result per tenant, so the overview and the wizard show the
-- set-up's state without calling WeCom on every page (doctor asks for a fresh token).
CREATE TABLE doctor_results (
    tenant_id BIGINT PRIMARY KEY REFERENCES tenants(id),
    at BIGINT NOT NULL,
    summary_json TEXT NOT NULL
);
