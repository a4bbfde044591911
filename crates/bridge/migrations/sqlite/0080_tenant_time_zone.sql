-- The time zone the console shows times in (an IANA name), chosen by the tenant's admin.
-- WeCom tenants are in China: Asia/Shanghai until the admin picks another.
ALTER TABLE tenants ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'Asia/Shanghai';
