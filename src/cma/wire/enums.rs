//! The enums of the wire: each serialises to its canonical spelling, deserialises any
//! casing, and keeps a value it does not know instead of failing the answer. Below every
//! request and response type that carries one.

use std::fmt;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize, Serializer};

/// Declares a wire enum: serialises to its canonical spelling, deserialises any casing, and
/// keeps values it does not know in `Unknown` instead of failing the whole response.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version of cmafleet does not know, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// The canonical spelling sent on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Unknown(other) => other,
                }
            }

            /// Parses any casing; never fails.
            pub fn parse(text: &str) -> Self {
                $(if text.eq_ignore_ascii_case($text) { return Self::$variant; })+
                Self::Unknown(text.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Ok(Self::parse(&text))
            }
        }
    };
}

wire_enum!(
    /// The migration flow of a job.
    Flow {
        Jira => "jira-onpremises-to-cloud",
        Confluence => "confluence-onpremises-to-cloud",
    }
);

wire_enum!(
    /// The kind of a task: capitalised in requests, lower case in responses (both parse).
    TaskKind {
        Check => "Check",
        Migrate => "Migrate",
    }
);

impl TaskKind {
    /// The lower-case spelling the service uses in `taskType`.
    pub fn response_str(&self) -> String {
        self.as_str().to_ascii_lowercase()
    }
}

wire_enum!(
    /// `status` of a status-tree node. Anything unknown means "not finished yet".
    Status {
        Pending => "PENDING",
        InProgress => "IN_PROGRESS",
        Finished => "FINISHED",
    }
);

impl Status {
    pub fn is_finished(&self) -> bool {
        matches!(self, Status::Finished)
    }
}

wire_enum!(
    /// `outcome` of a finished status-tree node.
    Outcome {
        Success => "SUCCESS",
        Warning => "WARNING",
        Failed => "FAILED",
        Skipped => "SKIPPED",
    }
);

wire_enum!(
    /// `includedData` of a projects/spaces scope.
    IncludedData {
        All => "all",
    }
);

wire_enum!(
    /// `usersAndGroups.mode`.
    UsersMode {
        All => "ALL",
        None => "NONE",
    }
);
