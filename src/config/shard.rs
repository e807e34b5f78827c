//! Which rows a run takes: `--wave`, `--site`, and the shard of a scaled-out fleet
//! (`--shard I/N`, or I from `JOB_COMPLETION_INDEX` with `--shards N`); `run`, `plan` and
//! `validate --online` resolve them alike.

use serde::Serialize;

use super::error::ConfigError;
use super::file::SettingsFile;
use super::layer::{Layered, Layers, Show, given, layer};

/// `--shard I/N`: only the rows whose cloud user hashes to shard I.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub fn parse(text: &str) -> Result<Shard, ConfigError> {
        let bad = || {
            ConfigError::Usage(format!(
                "bad --shard `{text}`: expected I/N with 0 <= I < N, e.g. 0/4"
            ))
        };
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether a cloud user belongs to this shard: a stable hash (FNV-1a) of the lower-cased
    /// email, so every site of one user — and so that user's rate limits — live in one process.
    pub fn owns(&self, cloud_user: &str) -> bool {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in cloud_user.trim().to_ascii_lowercase().bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash % u64::from(self.count) == u64::from(self.index)
    }

    pub fn label(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

/// Which rows a run takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Selection {
    pub waves: Vec<String>,
    pub sites: Vec<String>,
    pub shard: Option<Shard>,
}

/// The rows to take: `--wave`, `--site` and `--shard`/`--shards`, each over the file's.
pub(super) fn selection_shown(layers: &mut Layers) -> Result<Selection, ConfigError> {
    let waves = layers.optional("wave", |layer| &layer.wave, given)?;
    let sites = layers.optional("site", |layer| &layer.site, given)?;
    Ok(Selection {
        waves: waves.unwrap_or_default(),
        sites: sites.unwrap_or_default(),
        shard: shard_shown(layers)?,
    })
}

/// The shard from `--shard`/`--shards` (with `JOB_COMPLETION_INDEX`), else from the file.
/// The two keys are layered as one: a flag's `--shards` replaces the file's `shard`.
fn shard_shown(layers: &mut Layers) -> Result<Option<Shard>, ConfigError> {
    let pair = |layer: &SettingsFile| {
        (layer.shard.is_some() || layer.shards.is_some())
            .then(|| (layer.shard.clone(), layer.shards))
    };
    let Layered { value, origin } = layer(pair(&layers.flags), pair(&layers.file), None);
    let (text, count) = value.unwrap_or_default();
    if text.is_some() && count.is_some() {
        return Err(ConfigError::Config(
            "config file: set `shard` (I/N) or `shards` (N, with JOB_COMPLETION_INDEX), not both"
                .into(),
        ));
    }
    let shard = shard_from(text.as_deref(), count)?;
    match count {
        Some(count) => {
            layers.note("shards", origin, Some(toml::Value::Integer(count.into())));
            if let Some(shard) = shard {
                let label = shard.label();
                layers.remark(format!(
                    "this process is shard {label} (JOB_COMPLETION_INDEX)"
                ));
            }
        }
        None => layers.note("shard", origin, text.and_then(|text| text.show())),
    }
    Ok(shard)
}

/// `I/N` text, or N with I from `JOB_COMPLETION_INDEX`.
fn shard_from(text: Option<&str>, count: Option<u32>) -> Result<Option<Shard>, ConfigError> {
    match (text, count) {
        (Some(text), _) => Shard::parse(text).map(Some),
        (None, Some(count)) => {
            let index = std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
                ConfigError::Usage(
                    "--shards needs JOB_COMPLETION_INDEX (set by a Kubernetes Indexed Job); \
                     elsewhere use --shard I/N"
                        .into(),
                )
            })?;
            Shard::parse(&format!("{}/{count}", index.trim()))
                .map(Some)
                .map_err(|_| {
                    ConfigError::Usage(format!(
                        "JOB_COMPLETION_INDEX `{index}` with --shards {count}: expected 0 <= index < {count}"
                    ))
                })
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_users_and_keep_each_user_together() {
        let users: Vec<String> = (0..200).map(|n| format!("admin{n}@example.com")).collect();
        let shards = [
            Shard { index: 0, count: 3 },
            Shard { index: 1, count: 3 },
            Shard { index: 2, count: 3 },
        ];
        for user in &users {
            assert_eq!(
                shards.iter().filter(|shard| shard.owns(user)).count(),
                1,
                "{user} in exactly one shard"
            );
            assert_eq!(
                shards[0].owns(user),
                shards[0].owns(&user.to_uppercase()),
                "case-insensitive"
            );
        }
        for shard in &shards {
            assert!(
                users.iter().filter(|user| shard.owns(user)).count() > 30,
                "roughly even"
            );
        }
    }

    #[test]
    fn bad_shards_are_usage_errors() {
        for text in ["3/3", "1", "a/2", "0/0"] {
            assert!(
                matches!(Shard::parse(text), Err(ConfigError::Usage(_))),
                "{text}"
            );
        }
        assert_eq!(Shard::parse(" 1/4 ").unwrap(), Shard { index: 1, count: 4 });
    }
}
