//! A validated inventory row ([`Site`]) and the job definition it stands for.

use serde::Serialize;
use sha2::{Digest, Sha256};
use url::Url;

use super::secret::SecretRef;
use crate::cma::wire::{
    AppsScope, Destination, Flow, GlobalEntities, IncludedData, JobDefinition, KeyScope, Scope,
    Source, UsersAndGroups, UsersMode,
};

/// Which Migration Assistant a site runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    Jira,
    Confluence,
}

impl Product {
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Jira => "jira",
            Product::Confluence => "confluence",
        }
    }

    pub fn flow(self) -> Flow {
        match self {
            Product::Jira => Flow::Jira,
            Product::Confluence => Flow::Confluence,
        }
    }
}

/// Whether users and groups are in scope (`users` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UsersScope {
    All,
    None,
}

/// How cmafleet authenticates to a Server/DC instance (`server_auth` column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAuth {
    /// A personal access token, sent as `Authorization: Bearer`.
    Bearer(SecretRef),
    /// `basic:USERNAME:` followed by a reference to the password.
    Basic {
        username: String,
        password: SecretRef,
    },
}

impl ServerAuth {
    /// Every secret reference this auth needs.
    pub fn secret_ref(&self) -> &SecretRef {
        match self {
            ServerAuth::Bearer(reference) => reference,
            ServerAuth::Basic { password, .. } => password,
        }
    }
}

/// One validated inventory row: a (server instance, cloud site, scope) triple.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// The CSV line the row came from, for messages that point the user at it.
    pub line: usize,
    /// Unique name (`site` column), used in reports, logs and the `site` metric label.
    pub name: String,
    pub product: Product,
    /// Base URL of the Server/DC instance (no trailing slash).
    pub server_url: Url,
    pub server_id: String,
    pub server_auth: ServerAuth,
    /// Destination cloud site, as given (no trailing slash).
    pub cloud_url: Url,
    /// Admin email for the cloud API; also the rate-limit identity.
    pub cloud_user: String,
    pub cloud_token: SecretRef,
    /// Project (Jira) or space (Confluence) keys; empty means all.
    pub keys: Vec<String>,
    pub users: UsersScope,
    pub apps: Vec<String>,
    /// Confluence only (`GLOBAL_PAGE_TEMPLATES`, …).
    pub global_entities: Vec<String>,
    pub wave: Option<String>,
    /// Job name shown in the CMA UI; `None` means `cmafleet <site>`.
    pub job_name: Option<String>,
    /// The job's scope exactly as the row gives it (`scope_json`), sent as is instead of the
    /// one built from `keys`, `users`, `apps` and `global_entities`: where no public example
    /// shows the wire form, the user (who can try it on their own site) decides.
    pub scope_json: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Site {
    /// The job name sent to the API.
    pub fn job_name(&self) -> String {
        self.job_name
            .clone()
            .unwrap_or_else(|| format!("cmafleet {}", self.name))
    }

    /// The cloud URL as sent to the API: no trailing slash.
    pub fn cloud_url_str(&self) -> String {
        self.cloud_url.as_str().trim_end_matches('/').to_owned()
    }

    /// The server base URL as a string without trailing slash.
    pub fn server_url_str(&self) -> String {
        self.server_url.as_str().trim_end_matches('/').to_owned()
    }

    /// The job definition this row stands for, in the shapes the migration API accepts.
    pub fn job_definition(&self) -> JobDefinition {
        let keys = KeyScope {
            included_keys: (!self.keys.is_empty()).then(|| self.keys.clone()),
            included_data: IncludedData::All,
        };
        let users_and_groups = Some(UsersAndGroups {
            mode: match self.users {
                UsersScope::All => UsersMode::All,
                UsersScope::None => UsersMode::None,
            },
        });
        let apps = (!self.apps.is_empty()).then(|| AppsScope {
            included_keys: self.apps.clone(),
        });
        let scope = match self.product {
            Product::Jira => Scope {
                projects: Some(keys),
                users_and_groups,
                apps,
                ..Scope::default()
            },
            Product::Confluence => Scope {
                spaces: Some(keys),
                users_and_groups,
                apps,
                global_entities: (!self.global_entities.is_empty()).then(|| GlobalEntities {
                    included_types: self.global_entities.clone(),
                }),
                ..Scope::default()
            },
        };
        let scope = Scope {
            raw: self.scope_json.clone(),
            ..scope
        };
        JobDefinition {
            flow: self.product.flow(),
            name: self.job_name(),
            source: Source {
                server_id: self.server_id.clone(),
            },
            destination: Destination {
                url: self.cloud_url_str(),
            },
            scope,
        }
    }
}

/// A stable hash of a job definition's canonical JSON: a job is reused while this is
/// unchanged. (serde_json writes struct fields in declaration order, so the text is canonical.)
pub fn definition_hash(definition: &JobDefinition) -> String {
    let canonical = serde_json::to_vec(definition).unwrap_or_default();
    hex::encode(Sha256::digest(&canonical))
}
