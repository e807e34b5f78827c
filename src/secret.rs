//! A resolved secret: a token or password that must never reach a log, a report or an error.
//!
//! [`Secret`] prints `***` through `Debug` and `Display` and is only ever exposed to build an
//! HTTP header or a wire body. It sits below the inventory (which resolves references into it)
//! and the API client (which sends it), so neither has to import the other for it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serializer};

/// A resolved secret value. `Debug` and `Display` print `***`; there is no `Serialize`:
/// the two wire fields that must carry one opt in with [`Secret::serialize_exposed`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for an `Authorization` header or a wire body. Nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `serialize_with` helper for wire fields that must carry the value.
    pub fn serialize_exposed<S: Serializer>(
        secret: &Secret,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&secret.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}
