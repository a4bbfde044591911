//! Scenario files: a whole simulated world (settings + corps) in TOML or JSON.
//! The readable example lives in `examples/`; the generator writes the same format.

use crate::model::{App, Corp, Department, Member, ProviderApp, Tag};
use crate::settings::Settings;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub settings: Settings,
    #[serde(default, rename = "corp")]
    pub corps: Vec<CorpSpec>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpSpec {
    pub corpid: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_sync_secret: Option<String>,
    #[serde(default, rename = "department")]
    pub departments: Vec<Department>,
    #[serde(default, rename = "member")]
    pub members: Vec<Member>,
    #[serde(default, rename = "tag")]
    pub tags: Vec<Tag>,
    #[serde(default, rename = "app")]
    pub apps: Vec<App>,
    #[serde(default, rename = "provider_app")]
    pub provider_apps: Vec<ProviderApp>,
    #[serde(default)]
    pub outsiders: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid TOML scenario {path}: {source}")]
    Toml {
        path: String,
        source: toml::de::Error,
    },
    #[error("invalid JSON scenario {path}: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("scenario is inconsistent: {0}")]
    Invalid(String),
}

impl Scenario {
    /// Loads `*.json` as JSON and anything else as TOML.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let p = path.display().to_string();
        let io = |source| ScenarioError::Io {
            path: p.clone(),
            source,
        };
        let sc: Scenario = if path.extension().is_some_and(|e| e == "json") {
            // Read as parsed: a generated million-member org is a 1.5 GB file, which
            // should not be in memory next to the org it describes.
            let file =
                std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).map_err(io)?);
            serde_json::from_reader(file).map_err(|source| ScenarioError::Json {
                path: p.clone(),
                source,
            })?
        } else {
            let text = std::fs::read_to_string(path).map_err(io)?;
            toml::from_str(&text).map_err(|source| ScenarioError::Toml {
                path: p.clone(),
                source,
            })?
        };
        sc.validate()?;
        Ok(sc)
    }

    /// Catches the mistakes a hand-written scenario makes: dangling parents, members in
    /// unknown departments, tags and scopes naming nobody, duplicate ids or secrets.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        use std::collections::HashSet;
        let bad = |m: String| Err(ScenarioError::Invalid(m));
        for c in &self.corps {
            let depts: HashSet<u32> = c.departments.iter().map(|d| d.id).collect();
            if depts.len() != c.departments.len() {
                return bad(format!("corp {}: duplicate department id", c.corpid));
            }
            for d in &c.departments {
                if d.parentid != 0 && !depts.contains(&d.parentid) {
                    return bad(format!(
                        "corp {}: department {} has unknown parent {}",
                        c.corpid, d.id, d.parentid
                    ));
                }
            }
            let mut users = HashSet::new();
            for m in &c.members {
                if !users.insert(m.userid.to_ascii_lowercase()) {
                    return bad(format!("corp {}: duplicate userid {}", c.corpid, m.userid));
                }
                if let Some(md) = m.departments.iter().find(|md| !depts.contains(&md.id)) {
                    return bad(format!(
                        "corp {}: member {} is in unknown department {}",
                        c.corpid, m.userid, md.id
                    ));
                }
            }
            for t in &c.tags {
                if let Some(u) = t
                    .users
                    .iter()
                    .find(|u| !users.contains(&u.to_ascii_lowercase()))
                {
                    return bad(format!(
                        "corp {}: tag {} names unknown member {u}",
                        c.corpid, t.id
                    ));
                }
            }
            let mut secrets = HashSet::new();
            for a in &c.apps {
                if !secrets.insert(a.secret.clone()) {
                    return bad(format!("corp {}: two apps share a secret", c.corpid));
                }
                if let Some(u) = a
                    .scope
                    .users
                    .iter()
                    .find(|u| !users.contains(&u.to_ascii_lowercase()))
                {
                    return bad(format!(
                        "corp {}: app {} scope names unknown member {u}",
                        c.corpid, a.agentid
                    ));
                }
                if let Some(p) = a.scope.parties.iter().find(|p| !depts.contains(p)) {
                    return bad(format!(
                        "corp {}: app {} scope names unknown department {p}",
                        c.corpid, a.agentid
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}

impl CorpSpec {
    pub fn into_corp(self) -> Corp {
        let mut corp = Corp::new(&self.corpid, &self.name);
        corp.contact_sync_secret = self.contact_sync_secret;
        corp.departments = self.departments.into_iter().map(|d| (d.id, d)).collect();
        corp.members = self
            .members
            .into_iter()
            .map(|m| (m.userid.to_ascii_lowercase(), m))
            .collect();
        corp.tags = self
            .tags
            .into_iter()
            .map(|mut t| {
                t.users = t.users.iter().map(|u| u.to_ascii_lowercase()).collect();
                (t.id, t)
            })
            .collect();
        corp.apps = self.apps.into_iter().map(|a| (a.agentid, a)).collect();
        corp.provider_apps = self
            .provider_apps
            .into_iter()
            .map(|a| (a.agentid, a))
            .collect();
        corp.outsiders = self.outsiders;
        corp.rebuild_index();
        corp
    }

    pub fn from_corp(corp: &Corp) -> Self {
        CorpSpec {
            corpid: corp.corpid.clone(),
            name: corp.name.clone(),
            contact_sync_secret: corp.contact_sync_secret.clone(),
            departments: corp.departments.values().cloned().collect(),
            members: corp.members.values().cloned().collect(),
            tags: corp.tags.values().cloned().collect(),
            apps: corp.apps.values().cloned().collect(),
            provider_apps: corp.provider_apps.values().cloned().collect(),
            outsiders: corp.outsiders.clone(),
        }
    }
}
