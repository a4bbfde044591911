//! Times as the admin reads them: in the tenant's time zone (a console setting, by
//! default Asia/Shanghai), with the zone's offset so nobody has to guess. The zone rules
//! come from the IANA database bundled with `jiff`.

use crate::domain::tenant::Tenant;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The zone a new WeCom tenant's console uses.
pub const DEFAULT_ZONE: &str = "Asia/Shanghai";

/// Zones offered first in the console's list (any IANA name is accepted).
pub const COMMON_ZONES: [&str; 12] = [
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Taipei",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Asia/Dubai",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "UTC",
];

/// Shows instants in one time zone.
#[derive(Clone, Debug)]
pub struct Clock {
    name: String,
    tz: TimeZone,
}

impl Clock {
    /// The tenant's zone; a name the database does not know (it cannot be saved, but a
    /// row edited by hand could hold one) falls back to the default.
    pub fn of(t: &Tenant) -> Clock {
        Clock::named(&t.time_zone).unwrap_or_else(|| {
            Clock::named(DEFAULT_ZONE).unwrap_or(Clock {
                name: "UTC".into(),
                tz: TimeZone::UTC,
            })
        })
    }

    /// `None` when `name` is not an IANA zone.
    pub fn named(name: &str) -> Option<Clock> {
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        let tz = TimeZone::get(name).ok()?;
        Some(Clock {
            name: tz.iana_name().unwrap_or(name).to_string(),
            tz,
        })
    }

    /// The zone's IANA name, e.g. `Asia/Shanghai`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `2024-11-24 16:00:00 +08:00` for Unix milliseconds.
    pub fn show(&self, ms: i64) -> String {
        match Timestamp::from_millisecond(ms) {
            Ok(ts) => ts
                .to_zoned_datetime(self.tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S %:z")
                .to_string(),
            Err(_) => crate::web::pages::format_utc(ms),
        }
    }

    /// The first millisecond of `date` (`YYYY-MM-DD`) in this zone; `None` if it is no
    /// date. A day filter runs from this to the start of the next day.
    pub fn day_start(&self, date: &str) -> Option<i64> {
        let d: jiff::civil::Date = date.trim().parse().ok()?;
        let z = d.to_zoned_datetime(self.tz.clone()).ok()?;
        Some(z.timestamp().as_millisecond())
    }

    /// The first millisecond of the day (in this zone) that holds the instant `ms`.
    pub fn start_of_day(&self, ms: i64) -> i64 {
        Timestamp::from_millisecond(ms)
            .ok()
            .map(|ts| ts.to_zoned_datetime(self.tz.clone()).date())
            .and_then(|d| d.to_zoned_datetime(self.tz.clone()).ok())
            .map_or(ms - ms.rem_euclid(86_400_000), |z| {
                z.timestamp().as_millisecond()
            })
    }

    /// The day after `date`'s first millisecond in this zone (the end of a day filter).
    pub fn day_end(&self, date: &str) -> Option<i64> {
        let d: jiff::civil::Date = date.trim().parse().ok()?;
        let next = d.tomorrow().ok()?;
        let z = next.to_zoned_datetime(self.tz.clone()).ok()?;
        Some(z.timestamp().as_millisecond())
    }

    /// As [`Clock::show`], or `—` for no time.
    pub fn show_opt(&self, ms: Option<i64>) -> String {
        ms.map(|m| self.show(m)).unwrap_or_else(|| "—".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_times_in_the_zone_with_its_offset() {
        let sh = Clock::named("Asia/Shanghai").unwrap();
        assert_eq!(sh.show(1_732_435_200_123), "2024-11-24 16:00:00 +08:00");
        let ny = Clock::named("America/New_York").unwrap();
        // Daylight saving time follows the zone's rules.
        assert_eq!(ny.show(1_732_435_200_000), "2024-11-24 03:00:00 -05:00");
        assert_eq!(ny.show(1_720_000_000_000), "2024-07-03 05:46:40 -04:00");
        assert_eq!(
            Clock::named("UTC").unwrap().show(0),
            "1970-01-01 00:00:00 +00:00"
        );
        assert!(Clock::named("Mars/Olympus").is_none());
        // A day is the zone's day: 2024-11-24 in Shanghai starts at 16:00 UTC the day before.
        assert_eq!(sh.day_start("2024-11-24"), Some(1_732_377_600_000));
        assert_eq!(
            sh.day_end("2024-11-24"),
            Some(1_732_377_600_000 + 86_400_000)
        );
        assert_eq!(sh.day_start("2024-02-30"), None);
        assert_eq!(sh.start_of_day(1_732_435_200_123), 1_732_377_600_000);
        assert_eq!(sh.day_start("yesterday"), None);
        assert!(Clock::named("").is_none());
        for z in COMMON_ZONES {
            assert!(Clock::named(z).is_some(), "{z}");
        }
    }
}
