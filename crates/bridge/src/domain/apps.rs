//! The app catalogue: what an app is, who its access policy admits, and how the
//! workbench groups and orders apps. Pure: the store loads, the `apps` service decides here.

use std::collections::{BTreeMap, HashSet};

/// Built-in icons served by the binary (`/static/icons/{name}.svg`).
pub const BUILTIN_ICONS: &[&str] = &[
    "app", "chart", "doc", "form", "people", "calendar", "money", "box", "chat", "gear",
];

/// Largest uploaded icon, in bytes: enough for a crisp 256 px PNG or a simple SVG.
pub const MAX_ICON_BYTES: usize = 64 * 1024;

/// An app's icon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Icon {
    Builtin(String),
    /// Uploaded: served from `/apps/{slug}/icon`, content type `png` or `svg`.
    Uploaded {
        kind: IconKind,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IconKind {
    Png,
    Svg,
}

impl IconKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IconKind::Png => "png",
            IconKind::Svg => "svg",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "png" => Some(IconKind::Png),
            "svg" => Some(IconKind::Svg),
            _ => None,
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            IconKind::Png => "image/png",
            IconKind::Svg => "image/svg+xml",
        }
    }
}

/// Checks an uploaded icon: its size, and that its bytes are what its kind says (a PNG
/// signature, or an SVG document without scripts or external references).
pub fn check_icon(bytes: &[u8]) -> Result<IconKind, AppProblem> {
    if bytes.is_empty() {
        return Err(AppProblem::IconEmpty);
    }
    if bytes.len() > MAX_ICON_BYTES {
        return Err(AppProblem::IconTooLarge { bytes: bytes.len() });
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(IconKind::Png);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| AppProblem::IconNotImage)?;
    let lower = text.to_ascii_lowercase();
    if !lower.contains("<svg") {
        return Err(AppProblem::IconNotImage);
    }
    // Served with a sandboxing CSP anyway; refusing active content keeps a stored icon
    // from ever being a script, whoever opens it directly.
    for bad in [
        "<script",
        "javascript:",
        "onload",
        "onerror",
        "<foreignobject",
        "href=\"http",
        "href='http",
    ] {
        if lower.contains(bad) {
            return Err(AppProblem::IconActive);
        }
    }
    Ok(IconKind::Svg)
}

/// Who may open an app.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// Every authorized member.
    #[default]
    Everyone,
    /// Members of these departments (with their subtrees), holders of these tags
    /// (directly or through a tagged department), and these members.
    Chosen(Chosen),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chosen {
    pub departments: Vec<i64>,
    pub tags: Vec<i64>,
    pub users: Vec<i64>,
}

impl Chosen {
    pub fn is_empty(&self) -> bool {
        self.departments.is_empty() && self.tags.is_empty() && self.users.is_empty()
    }
}

/// Where a member sits in the directory, as the policy needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub user_id: i64,
    /// The member's departments and every ancestor of them.
    pub departments_with_ancestors: HashSet<i64>,
    /// Tags held directly or through a tagged department (with its subtree).
    pub tags: HashSet<i64>,
}

impl Access {
    pub fn admits(&self, p: &Placement) -> bool {
        match self {
            Access::Everyone => true,
            Access::Chosen(c) => {
                c.users.contains(&p.user_id)
                    || c.departments
                        .iter()
                        .any(|d| p.departments_with_ancestors.contains(d))
                    || c.tags.iter().any(|t| p.tags.contains(t))
            }
        }
    }
}

/// A department's ancestors (itself included), from a parent map; stops at a loop or an
/// unknown parent (a parent outside the visible scope).
pub fn with_ancestors(start: &[i64], parent_of: &dyn Fn(i64) -> Option<i64>) -> HashSet<i64> {
    let mut out = HashSet::new();
    for &d in start {
        let mut cur = Some(d);
        while let Some(c) = cur {
            if !out.insert(c) {
                break;
            }
            cur = parent_of(c).filter(|p| *p != 0 && *p != c);
        }
    }
    out
}

/// One app of the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    pub id: i64,
    pub tenant_id: i64,
    /// The app's short name in URLs (`/apps/{slug}/open`, `/auth/verify?app={slug}`).
    pub slug: String,
    pub name_zh: String,
    pub name_en: String,
    pub icon: Icon,
    pub category: String,
    pub description: String,
    pub position: i64,
    pub enabled: bool,
    /// Where the app opens: an absolute http(s) URL or a path on the tenant's domain.
    pub url: String,
    pub access: Access,
    /// Whom a refused member should ask (free text, e.g. "IT 服务台 · 分机 8000").
    pub contact: String,
}

impl App {
    pub fn name(&self, zh: bool) -> &str {
        if zh || self.name_en.is_empty() {
            &self.name_zh
        } else {
            &self.name_en
        }
    }

    /// The URL to open, with `path` (a checked local path of the app, or empty) appended
    /// to an app that lives under a path of its own.
    pub fn open_url(&self, path: &str) -> String {
        if path.is_empty() || path == "/" {
            return self.url.clone();
        }
        let base = self.url.split(['?', '#']).next().unwrap_or(&self.url);
        // A path the app itself handed to forward auth already starts with its base path.
        let base_path = match base.find("://") {
            Some(i) => base[i + 3..]
                .find('/')
                .map(|j| &base[i + 3 + j..])
                .unwrap_or(""),
            None => base,
        };
        let origin = &base[..base.len() - base_path.len()];
        if !base_path.is_empty()
            && base_path != "/"
            && path.starts_with(base_path.trim_end_matches('/'))
        {
            format!("{origin}{path}")
        } else {
            format!("{}{}", base.trim_end_matches('/'), path)
        }
    }
}

/// What an admin typed for an app.
#[derive(Clone, Debug, Default)]
pub struct AppDraft {
    pub slug: String,
    pub name_zh: String,
    pub name_en: String,
    pub icon: String,
    pub category: String,
    pub description: String,
    pub position: i64,
    pub enabled: bool,
    pub url: String,
    pub access: Access,
    pub contact: String,
}

impl From<&App> for AppDraft {
    fn from(a: &App) -> Self {
        AppDraft {
            slug: a.slug.clone(),
            name_zh: a.name_zh.clone(),
            name_en: a.name_en.clone(),
            icon: match &a.icon {
                Icon::Builtin(n) => n.clone(),
                Icon::Uploaded { .. } => "uploaded".into(),
            },
            category: a.category.clone(),
            description: a.description.clone(),
            position: a.position,
            enabled: a.enabled,
            url: a.url.clone(),
            access: a.access.clone(),
            contact: a.contact.clone(),
        }
    }
}

/// Why an app cannot be saved or an icon kept. Each names the field and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppProblem {
    #[error(
        "the short name must be 2–40 lower-case letters, digits or hyphens, starting with a letter"
    )]
    Slug,
    #[error("the short name {0:?} is already used by another app")]
    SlugTaken(String),
    #[error("the Chinese name is required (at most 40 characters)")]
    Name,
    #[error("the address must be an http(s) URL or a path starting with /")]
    Url,
    #[error("unknown built-in icon {0:?}")]
    Icon(String),
    #[error("the category, description or contact is too long")]
    TooLong,
    #[error("choose at least one department, tag or member, or let every authorized member in")]
    EmptyPolicy,
    #[error("the icon file is empty")]
    IconEmpty,
    #[error("the icon is {bytes} bytes; the limit is 64 KB")]
    IconTooLarge { bytes: usize },
    #[error("the icon must be a PNG or SVG image")]
    IconNotImage,
    #[error("the SVG icon contains scripts or external references")]
    IconActive,
}

impl AppDraft {
    /// Trims and checks every field; the first problem found is returned.
    pub fn check(mut self) -> Result<AppDraft, AppProblem> {
        self.slug = self.slug.trim().to_string();
        self.name_zh = self.name_zh.trim().to_string();
        self.name_en = self.name_en.trim().to_string();
        self.category = self.category.trim().to_string();
        self.description = self.description.trim().to_string();
        self.contact = self.contact.trim().to_string();
        self.url = self.url.trim().to_string();
        self.icon = match self.icon.trim() {
            "" => "app".to_string(),
            s => s.to_string(),
        };
        let s = self.slug.as_bytes();
        if !(2..=40).contains(&s.len())
            || !s[0].is_ascii_lowercase()
            || !s
                .iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        {
            return Err(AppProblem::Slug);
        }
        if self.name_zh.is_empty()
            || self.name_zh.chars().count() > 40
            || self.name_en.chars().count() > 60
        {
            return Err(AppProblem::Name);
        }
        if !url_ok(&self.url) {
            return Err(AppProblem::Url);
        }
        if self.icon != "uploaded" && !BUILTIN_ICONS.contains(&self.icon.as_str()) {
            return Err(AppProblem::Icon(self.icon));
        }
        if self.category.chars().count() > 40
            || self.description.chars().count() > 500
            || self.contact.chars().count() > 200
        {
            return Err(AppProblem::TooLong);
        }
        if let Access::Chosen(c) = &mut self.access {
            for v in [&mut c.departments, &mut c.tags, &mut c.users] {
                v.sort_unstable();
                v.dedup();
            }
            if c.is_empty() {
                return Err(AppProblem::EmptyPolicy);
            }
        }
        Ok(self)
    }
}

/// An http(s) URL with a host, or a local path (not `//`), without spaces or controls.
fn url_ok(u: &str) -> bool {
    if u.is_empty() || u.len() > 2000 || u.chars().any(|c| c.is_control() || c == ' ') {
        return false;
    }
    if let Some(rest) = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
    {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        return !host.is_empty() && !host.contains('@') && !host.contains('\\');
    }
    u.starts_with('/') && !u.starts_with("//") && !u.contains('\\')
}

/// The workbench: the apps a member may open, grouped by category (apps without one
/// last), each group in the admin's order; and the member's frequently used apps.
pub struct Workbench<'a> {
    pub groups: Vec<(String, Vec<&'a App>)>,
    pub frequent: Vec<&'a App>,
}

/// How many frequently used apps the workbench shows.
pub const FREQUENT_MAX: usize = 4;

/// `opens`: (app id, times opened, last opened) for this member.
pub fn workbench<'a>(
    apps: &'a [App],
    p: &Placement,
    opens: &[(i64, i64, i64)],
    query: &str,
) -> Workbench<'a> {
    let q = query.trim().to_lowercase();
    let visible: Vec<&App> = apps
        .iter()
        .filter(|a| a.enabled && a.access.admits(p))
        .filter(|a| {
            q.is_empty()
                || a.name_zh.to_lowercase().contains(&q)
                || a.name_en.to_lowercase().contains(&q)
                || a.category.to_lowercase().contains(&q)
                || a.description.to_lowercase().contains(&q)
        })
        .collect();
    let mut by_cat: BTreeMap<(bool, String), Vec<&App>> = BTreeMap::new();
    for a in &visible {
        by_cat
            .entry((a.category.is_empty(), a.category.clone()))
            .or_default()
            .push(a);
    }
    let groups = by_cat
        .into_iter()
        .map(|((_, c), mut v)| {
            v.sort_by(|x, y| x.position.cmp(&y.position).then(x.id.cmp(&y.id)));
            (c, v)
        })
        .collect();
    let mut used: Vec<&(i64, i64, i64)> = opens.iter().filter(|o| o.1 > 0).collect();
    used.sort_by(|x, y| y.1.cmp(&x.1).then(y.2.cmp(&x.2)));
    let frequent = used
        .iter()
        .filter_map(|o| visible.iter().find(|a| a.id == o.0).copied())
        .take(FREQUENT_MAX)
        .collect();
    Workbench { groups, frequent }
}

/// The workbench shows a search box from this many apps on.
pub const SEARCH_FROM: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: i64, cat: &str, pos: i64, access: Access) -> App {
        App {
            id,
            tenant_id: 1,
            slug: format!("app-{id}"),
            name_zh: format!("应用{id}"),
            name_en: format!("App {id}"),
            icon: Icon::Builtin("app".into()),
            category: cat.into(),
            description: String::new(),
            position: pos,
            enabled: true,
            url: "/x".into(),
            access,
            contact: String::new(),
        }
    }

    fn placement(user: i64, deps: &[i64], tags: &[i64]) -> Placement {
        Placement {
            user_id: user,
            departments_with_ancestors: deps.iter().copied().collect(),
            tags: tags.iter().copied().collect(),
        }
    }

    #[test]
    fn each_policy_kind_admits_and_refuses() {
        let p = placement(7, &[1, 2, 3], &[9]);
        assert!(Access::Everyone.admits(&p));
        let by = |d: &[i64], t: &[i64], u: &[i64]| {
            Access::Chosen(Chosen {
                departments: d.to_vec(),
                tags: t.to_vec(),
                users: u.to_vec(),
            })
        };
        assert!(by(&[2], &[], &[]).admits(&p));
        assert!(!by(&[4], &[], &[]).admits(&p));
        assert!(by(&[], &[9], &[]).admits(&p));
        assert!(!by(&[], &[8], &[]).admits(&p));
        assert!(by(&[], &[], &[7]).admits(&p));
        assert!(!by(&[], &[], &[8]).admits(&p));
    }

    #[test]
    fn ancestors_follow_parents_and_stop_at_loops() {
        let parents = |d: i64| match d {
            3 => Some(2),
            2 => Some(1),
            1 => Some(0),
            5 => Some(6),
            6 => Some(5),
            _ => None,
        };
        let got = with_ancestors(&[3, 5], &parents);
        let want: HashSet<i64> = [1, 2, 3, 5, 6].into_iter().collect();
        assert_eq!(got, want);
    }

    #[test]
    fn drafts_are_checked_field_by_field() {
        let ok = AppDraft {
            slug: "dashboard".into(),
            name_zh: "数据看板".into(),
            url: "https://bi.example.com/".into(),
            ..Default::default()
        };
        assert!(ok.clone().check().is_ok());
        let bad = |f: fn(&mut AppDraft), want: AppProblem| {
            let mut d = ok.clone();
            f(&mut d);
            assert_eq!(d.check().unwrap_err(), want);
        };
        bad(|d| d.slug = "Dash".into(), AppProblem::Slug);
        bad(|d| d.slug = "9a".into(), AppProblem::Slug);
        bad(|d| d.name_zh = " ".into(), AppProblem::Name);
        bad(|d| d.url = "//evil.example".into(), AppProblem::Url);
        bad(|d| d.url = "javascript:alert(1)".into(), AppProblem::Url);
        bad(|d| d.url = "https://a b".into(), AppProblem::Url);
        bad(|d| d.icon = "nope".into(), AppProblem::Icon("nope".into()));
        bad(
            |d| d.access = Access::Chosen(Chosen::default()),
            AppProblem::EmptyPolicy,
        );
    }

    #[test]
    fn icons_are_checked() {
        assert_eq!(check_icon(b"\x89PNG\r\n\x1a\nxxxx"), Ok(IconKind::Png));
        assert_eq!(
            check_icon(br#"<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>"#),
            Ok(IconKind::Svg)
        );
        assert_eq!(
            check_icon(b"<svg onload=alert(1)></svg>"),
            Err(AppProblem::IconActive)
        );
        assert_eq!(check_icon(b"GIF89a"), Err(AppProblem::IconNotImage));
        assert_eq!(check_icon(b""), Err(AppProblem::IconEmpty));
        assert_eq!(
            check_icon(&vec![b' '; MAX_ICON_BYTES + 1]),
            Err(AppProblem::IconTooLarge {
                bytes: MAX_ICON_BYTES + 1
            })
        );
    }

    #[test]
    fn the_workbench_groups_orders_and_ranks_frequent_use() {
        let apps = vec![
            app(1, "办公", 2, Access::Everyone),
            app(2, "办公", 1, Access::Everyone),
            app(3, "", 0, Access::Everyone),
            app(
                4,
                "数据",
                0,
                Access::Chosen(Chosen {
                    users: vec![99],
                    ..Default::default()
                }),
            ),
        ];
        let p = placement(7, &[], &[]);
        let wb = workbench(&apps, &p, &[(1, 3, 10), (3, 5, 5), (4, 9, 9)], "");
        let ids: Vec<Vec<i64>> = wb
            .groups
            .iter()
            .map(|(_, v)| v.iter().map(|a| a.id).collect())
            .collect();
        // Named categories first, uncategorized last; the refused app 4 nowhere.
        assert_eq!(ids, vec![vec![2, 1], vec![3]]);
        assert_eq!(
            wb.frequent.iter().map(|a| a.id).collect::<Vec<_>>(),
            vec![3, 1]
        );
        let wb = workbench(&apps, &p, &[], "app 2");
        assert_eq!(wb.groups.len(), 1);
        assert_eq!(wb.groups[0].1[0].id, 2);
    }

    #[test]
    fn open_url_keeps_the_app_base() {
        let mut a = app(1, "", 0, Access::Everyone);
        a.url = "/apps/hello/".into();
        assert_eq!(a.open_url(""), "/apps/hello/");
        assert_eq!(a.open_url("/apps/hello/x?y=1"), "/apps/hello/x?y=1");
        a.url = "https://bi.example.com/board".into();
        assert_eq!(a.open_url("/q"), "https://bi.example.com/board/q");
        assert_eq!(a.open_url("/board/q"), "https://bi.example.com/board/q");
    }
}
