//! Fields WeCom withholds from the directory API of apps created after 2022-06-20
//! (mobile, email, biz_mail, avatar, gender), filled with the member's consent: an
//! in-client `snsapi_privateinfo` sign-in gives a `user_ticket`, `auth/getuserdetail`
//! gives the fields (wecom-api.md §5.7, §9.4). No I/O here.
//!
//! Which value wins: the directory's, whenever WeCom's directory API returns the field
//! (an app created before the cut). A sync re-reads it on every run and callbacks carry
//! its changes, while a consented value is refreshed only at the member's next consenting
//! sign-in. A consented value is used when the directory has none, and is never erased
//! by a sync that cannot see the field (it is kept apart from the directory's columns).

use serde::{Deserialize, Serialize};

/// The fields filled this way (`qr_code` and `address` are not kept: nothing uses them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivateField {
    Mobile,
    Email,
    BizMail,
    Avatar,
    Gender,
}

impl PrivateField {
    pub const ALL: [PrivateField; 5] = [
        PrivateField::Mobile,
        PrivateField::Email,
        PrivateField::BizMail,
        PrivateField::Avatar,
        PrivateField::Gender,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PrivateField::Mobile => "mobile",
            PrivateField::Email => "email",
            PrivateField::BizMail => "biz_mail",
            PrivateField::Avatar => "avatar",
            PrivateField::Gender => "gender",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            PrivateField::Mobile => "手机号",
            PrivateField::Email => "个人邮箱",
            PrivateField::BizMail => "企业邮箱",
            PrivateField::Avatar => "头像",
            PrivateField::Gender => "性别",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            PrivateField::Mobile => "Mobile",
            PrivateField::Email => "Personal email",
            PrivateField::BizMail => "Corporate email",
            PrivateField::Avatar => "Avatar",
            PrivateField::Gender => "Gender",
        }
    }
}

/// Where a member's value of a field came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldSource {
    /// WeCom's directory API (user/get, user/list, change_contact).
    WecomDirectory,
    /// `auth/getuserdetail`, with the member's consent at sign-in.
    WecomConsent,
}

impl FieldSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldSource::WecomDirectory => "wecom_directory",
            FieldSource::WecomConsent => "wecom_consent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "wecom_directory" => Some(FieldSource::WecomDirectory),
            "wecom_consent" => Some(FieldSource::WecomConsent),
            _ => None,
        }
    }
}

/// A stored consented value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Consented {
    pub field: PrivateField,
    pub value: String,
    pub source: FieldSource,
    pub recorded_at: i64,
}

/// What `auth/getuserdetail` answered, as plain strings (empty = not given).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsentAnswer {
    pub mobile: String,
    pub email: String,
    pub biz_mail: String,
    pub avatar: String,
    /// WeCom's code: `"1"` male, `"2"` female, `"0"` unknown or not consented.
    pub gender: String,
}

/// The values worth keeping from an answer: blank ones and an unknown gender (`"0"`, which
/// is also what a field the admin did not tick reads as) are left out, so they never
/// replace what an earlier consent gave.
pub fn values_to_keep(a: &ConsentAnswer) -> Vec<(PrivateField, String)> {
    let mut out = Vec::new();
    for (f, v) in [
        (PrivateField::Mobile, &a.mobile),
        (PrivateField::Email, &a.email),
        (PrivateField::BizMail, &a.biz_mail),
        (PrivateField::Avatar, &a.avatar),
    ] {
        let v = v.trim();
        if !v.is_empty() {
            out.push((f, v.to_string()));
        }
    }
    if matches!(a.gender.trim(), "1" | "2") {
        out.push((PrivateField::Gender, a.gender.trim().to_string()));
    }
    out
}

/// A field's value as the product uses it, with its source (and, for a consented
/// value, when it was given).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Effective {
    pub value: String,
    pub source: FieldSource,
    pub recorded_at: Option<i64>,
}

/// The value to use: the directory's when it has one, else the consented one.
pub fn effective(directory: Option<&str>, consented: Option<&Consented>) -> Option<Effective> {
    if let Some(d) = directory.map(str::trim).filter(|d| !d.is_empty()) {
        return Some(Effective {
            value: d.to_string(),
            source: FieldSource::WecomDirectory,
            recorded_at: None,
        });
    }
    consented.map(|c| Effective {
        value: c.value.clone(),
        source: c.source,
        recorded_at: Some(c.recorded_at),
    })
}

/// Every private field of a member with the value in use and its source: the directory
/// keeps mobile and email, consent gives all five.
pub fn member_fields(
    directory_mobile: Option<&str>,
    directory_email: Option<&str>,
    consented: &[Consented],
) -> Vec<(PrivateField, Option<Effective>)> {
    PrivateField::ALL
        .into_iter()
        .map(|f| {
            let dir = match f {
                PrivateField::Mobile => directory_mobile,
                PrivateField::Email => directory_email,
                _ => None,
            };
            (f, effective(dir, consented.iter().find(|c| c.field == f)))
        })
        .collect()
}

/// A member's email for OIDC's `email` claim, with `email_verified` (OIDC Core §5.1):
/// the corporate mailbox (issued by the company) first, verified; then an address the
/// organisation keeps in its directory, verified as before; then a personal address the
/// member consented to share, which nobody verified.
pub fn email_claim(
    directory_email: Option<&str>,
    consented: &[Consented],
) -> Option<(String, bool)> {
    let of = |f: PrivateField| {
        consented
            .iter()
            .find(|c| c.field == f)
            .map(|c| c.value.trim())
            .filter(|v| !v.is_empty())
    };
    if let Some(b) = of(PrivateField::BizMail) {
        return Some((b.to_string(), true));
    }
    if let Some(d) = directory_email.map(str::trim).filter(|d| !d.is_empty()) {
        return Some((d.to_string(), true));
    }
    of(PrivateField::Email).map(|e| (e.to_string(), false))
}

/// OIDC's `gender` claim (Core §5.1: `female`, `male`, or another value) from WeCom's code.
pub fn gender_claim(code: &str) -> Option<&'static str> {
    match code.trim() {
        "1" => Some("male"),
        "2" => Some("female"),
        _ => None,
    }
}

/// How many members have a field, by source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldCoverage {
    pub field: String,
    /// Members whose value comes from the directory.
    pub directory: u64,
    /// Members with a consented value and none from the directory.
    pub consent: u64,
    /// Members counted (not disabled).
    pub members: u64,
}

impl FieldCoverage {
    pub fn missing(&self) -> u64 {
        self.members.saturating_sub(self.directory + self.consent)
    }

    pub fn label_zh(&self) -> &'static str {
        PrivateField::parse(&self.field).map_or("", |f| f.label_zh())
    }

    pub fn label_en(&self) -> &'static str {
        PrivateField::parse(&self.field).map_or("", |f| f.label_en())
    }
}

/// The opt-in's last outcomes, as doctor judges them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsentOutcome {
    pub last_filled_at: Option<i64>,
    pub last_failed_at: Option<i64>,
    /// The failure's audit detail (errcode and reason).
    pub last_failure: Option<String>,
}

/// Why filling the fields failed: the sign-in goes on, and the audit says which.
pub fn failure_note(errcode: Option<i64>) -> &'static str {
    match errcode {
        Some(40029) => "the user_ticket was refused (40029: bad or expired; it lives 30 minutes)",
        Some(48002) | Some(50002) | Some(60011) => {
            "the WeCom app may not read members' private fields (check its 隐私信息/敏感信息 privilege and visible scope)"
        }
        Some(_) => "WeCom refused auth/getuserdetail",
        None => "auth/getuserdetail could not be reached",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consented(field: PrivateField, value: &str) -> Consented {
        Consented {
            field,
            value: value.into(),
            source: FieldSource::WecomConsent,
            recorded_at: 42,
        }
    }

    #[test]
    fn blank_values_and_unknown_gender_are_not_kept() {
        let a = ConsentAnswer {
            mobile: "13800000000".into(),
            email: " ".into(),
            biz_mail: "zs@corp.example.com".into(),
            avatar: String::new(),
            gender: "0".into(),
        };
        assert_eq!(
            values_to_keep(&a),
            vec![
                (PrivateField::Mobile, "13800000000".to_string()),
                (PrivateField::BizMail, "zs@corp.example.com".to_string()),
            ]
        );
        let a = ConsentAnswer {
            gender: "2".into(),
            ..Default::default()
        };
        assert_eq!(
            values_to_keep(&a),
            vec![(PrivateField::Gender, "2".to_string())]
        );
    }

    #[test]
    fn the_directory_wins_when_it_has_the_field() {
        let c = consented(PrivateField::Mobile, "139");
        let d = effective(Some("138"), Some(&c)).unwrap();
        assert_eq!(
            (d.value.as_str(), d.source),
            ("138", FieldSource::WecomDirectory)
        );
        // Withheld (None) or blank in the directory: the consented value stands, with
        // its provenance.
        for dir in [None, Some(""), Some("  ")] {
            let e = effective(dir, Some(&c)).unwrap();
            assert_eq!(
                (e.value.as_str(), e.source, e.recorded_at),
                ("139", FieldSource::WecomConsent, Some(42))
            );
        }
        assert_eq!(effective(None, None), None);
    }

    #[test]
    fn email_prefers_the_corporate_mailbox_and_says_who_verified_it() {
        let biz = consented(PrivateField::BizMail, "zs@corp.example.com");
        let personal = consented(PrivateField::Email, "zs@example.com");
        assert_eq!(
            email_claim(Some("dir@example.com"), &[personal.clone(), biz.clone()]),
            Some(("zs@corp.example.com".into(), true))
        );
        assert_eq!(
            email_claim(Some("dir@example.com"), std::slice::from_ref(&personal)),
            Some(("dir@example.com".into(), true))
        );
        assert_eq!(
            email_claim(None, std::slice::from_ref(&personal)),
            Some(("zs@example.com".into(), false))
        );
        assert_eq!(email_claim(Some(" "), &[]), None);
    }

    #[test]
    fn member_fields_name_each_source() {
        let c = [
            consented(PrivateField::Email, "zs@example.com"),
            consented(PrivateField::Avatar, "https://a/0"),
        ];
        let f = member_fields(Some("138"), None, &c);
        let src = |i: usize| f[i].1.as_ref().map(|e| e.source);
        assert_eq!(f.len(), 5);
        assert_eq!(src(0), Some(FieldSource::WecomDirectory)); // mobile
        assert_eq!(src(1), Some(FieldSource::WecomConsent)); // email
        assert_eq!(src(2), None); // biz_mail
        assert_eq!(src(3), Some(FieldSource::WecomConsent)); // avatar
        assert_eq!(src(4), None); // gender
    }

    #[test]
    fn gender_codes() {
        assert_eq!(gender_claim("1"), Some("male"));
        assert_eq!(gender_claim("2"), Some("female"));
        assert_eq!(gender_claim("0"), None);
        assert_eq!(gender_claim(""), None);
    }

    #[test]
    fn names_round_trip() {
        for f in PrivateField::ALL {
            assert_eq!(PrivateField::parse(f.as_str()), Some(f));
        }
        for s in [FieldSource::WecomDirectory, FieldSource::WecomConsent] {
            assert_eq!(FieldSource::parse(s.as_str()), Some(s));
        }
        assert_eq!(PrivateField::parse("qr_code"), None);
        let c = FieldCoverage {
            field: "email".into(),
            directory: 2,
            consent: 3,
            members: 10,
        };
        assert_eq!(c.missing(), 5);
    }
}
