//! The points of `shapes`: one enum each, whose first value is the documented one (its
//! default), with its spelling in a scenario and in the summary, every value (for the random
//! pick), and a refusal naming the accepted values.

use std::fmt;

use axum::http::StatusCode;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// Declares a point: an enum whose first value is the documented one (its default), its
/// spellings in a scenario (any casing; a number is read as its digits), every value (for
/// the random pick), and an error naming the accepted values.
macro_rules! shape_point {
    (
        $(#[$meta:meta])* $name:ident, $key:literal {
            $(#[$fmeta:meta])* $first:ident => $first_text:literal,
            $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub(crate) enum $name {
            $(#[$fmeta])*
            #[default]
            $first,
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, the documented one first.
            pub(crate) const ALL: &'static [$name] = &[$name::$first, $($name::$variant,)+];

            /// The spelling in a scenario and in the summary.
            pub(crate) fn as_str(self) -> &'static str {
                match self {
                    $name::$first => $first_text,
                    $($name::$variant => $text,)+
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = deserializer.deserialize_any(PointText)?;
                $name::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str().eq_ignore_ascii_case(text.trim()))
                    .ok_or_else(|| unknown_value::<D::Error>($key, &text, $name::ALL.iter().map(|v| v.as_str())))
            }
        }
    };
}

/// A point's value as written: a string, or a number (`attach_refusal = 403`).
struct PointText;

impl Visitor<'_> for PointText {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a shape value (a string)")
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
        Ok(text.to_owned())
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<String, E> {
        Ok(n.to_string())
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<String, E> {
        Ok(n.to_string())
    }
}

fn unknown_value<'a, E: de::Error>(key: &str, text: &str, all: impl Iterator<Item = &'a str>) -> E {
    let all: Vec<&str> = all.collect();
    E::custom(format!(
        "unknown {key} shape `{text}`, expected one of {}",
        all.join(", ")
    ))
}

shape_point!(
    /// Whether a node read without `expandChildren=true` carries its children.
    ChildrenShape, "children" {
        /// No `children` at all (the documented examples have none).
        ExpandOnly => "expand_only",
        /// Its children, without their own children.
        OneLevel => "one_level",
    }
);

shape_point!(
    /// Where a Check task's checks hang.
    CheckTaskTree, "check_task_tree" {
        /// Directly under the root; `level=check` answers 404.
        Root => "root",
        /// Under a `check` child, as in a Migrate task.
        CheckNode => "check_node",
    }
);

shape_point!(
    /// Which scopes the `migrate` level lists.
    ScopesShape, "scopes" {
        /// A scope once it has started; scopes outside the job's scope never.
        Late => "late",
        /// Every scope of the product: PENDING until it starts, SKIPPED outside the job.
        All => "all",
    }
);

shape_point!(
    /// The casing of `status` and `outcome` values in status trees.
    EnumCase, "enum_case" {
        /// `IN_PROGRESS`.
        Upper => "upper",
        /// `in_progress`.
        Lower => "lower",
        /// `In_progress`.
        Title => "title",
    }
);

shape_point!(
    /// The words of `status`.
    StatusWords, "statuses" {
        /// PENDING, IN_PROGRESS, FINISHED.
        Documented => "documented",
        /// QUEUED, RUNNING, COMPLETED.
        Unknown => "unknown",
    }
);

shape_point!(
    /// `taskType` in task lists and get-task.
    TaskTypeShape, "task_type" {
        /// `check` / `migrate`.
        Lower => "lower",
        /// `Check` / `Migrate`.
        Capitalised => "capitalised",
        /// `CHECK` / `MIGRATE`.
        Upper => "upper",
        /// `preflight` / `migration`.
        Other => "other",
        /// Left out.
        Absent => "absent",
    }
);

shape_point!(
    /// The body of every cloud-side error answer.
    ErrorEnvelope, "error_envelope" {
        /// `{"status":N,"errorMessage":"…","id":"…"}`.
        ErrorMessage => "error_message",
        /// `{"message":"…"}`.
        Message => "message",
        /// `{"errors":[{"message":"…"}]}`.
        Errors => "errors",
        /// `{"error":{"message":"…"}}`.
        Error => "error",
        /// The words alone, `text/plain`.
        Text => "text",
    }
);

shape_point!(
    /// The HTTP versions the simulator speaks.
    HttpVersions, "http" {
        /// HTTP/1.1 and HTTP/2 with prior knowledge (h2c).
        Both => "both",
        /// HTTP/1.1 only: a client speaking h2c prior knowledge fails.
        Http1 => "http1",
    }
);

shape_point!(
    /// The HTTP status of the attach refusal of a server not connected to the cloud site.
    AttachRefusal, "attach_refusal" {
        BadRequest => "400",
        Forbidden => "403",
        Conflict => "409",
        ServerError => "500",
    }
);

impl AttachRefusal {
    pub(crate) fn status(self) -> StatusCode {
        match self {
            AttachRefusal::BadRequest => StatusCode::BAD_REQUEST,
            AttachRefusal::Forbidden => StatusCode::FORBIDDEN,
            AttachRefusal::Conflict => StatusCode::CONFLICT,
            AttachRefusal::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

shape_point!(
    /// What the location of every second listed artifact answers (the first always answers
    /// the file).
    ArtifactAnswer, "artifacts" {
        /// The file.
        File => "file",
        /// A 200 `application/json` metadata object.
        Json => "json",
        /// A 200 `text/html` login page.
        Html => "html",
    }
);

shape_point!(
    /// `expireAt` of listed artifacts.
    ExpireAt, "expire_at" {
        /// When they really expire.
        Future => "future",
        /// Already past (the files still download).
        Past => "past",
        /// Unparseable text.
        Garbage => "garbage",
    }
);
