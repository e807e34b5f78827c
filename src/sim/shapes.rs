//! Shapes: the answers' details that the public API material leaves open (where a client
//! must accept more than one form), each one a *point* the simulator can serve in several
//! ways. This module owns the scenario's `[shapes]` table, the resolved [`Shapes`] of a run (documented
//! by default, set by the table, or picked from a seed) and the one-line summary printed at
//! start; `points` declares the points and their values; `transform` holds the pure
//! functions that turn canonical answers into the chosen shape, so `progress` renders one
//! canonical tree.
//!
//! Random mode varies shapes only, never outcomes, durations or faults: a run against any
//! seed must end with the same outcomes as against the documented shapes.

mod points;
mod transform;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cma::wire::{StatusNode, TaskKind};

use super::dice;
use super::values::{DurationValue, LastPage, LinkForm, RetryAfterForm, TimeFormat};

pub(crate) use points::{
    ArtifactAnswer, AttachRefusal, CheckTaskTree, ChildrenShape, EnumCase, ErrorEnvelope, ExpireAt,
    HttpVersions, ScopesShape, StatusWords, TaskTypeShape,
};
#[cfg(test)]
pub(crate) use transform::collapse_grandchildren;
pub(crate) use transform::{artifact_stand_in, error_body, expire_at, task_type};

/// The `[shapes]` table: every point optional; `random_seed` picks those it does not set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShapesSpec {
    /// Picks every point neither this table nor `[api]` sets, from this seed.
    pub random_seed: Option<u64>,
    pub children: Option<ChildrenShape>,
    pub check_task_tree: Option<CheckTaskTree>,
    pub scopes: Option<ScopesShape>,
    pub enum_case: Option<EnumCase>,
    pub statuses: Option<StatusWords>,
    pub task_type: Option<TaskTypeShape>,
    pub error_envelope: Option<ErrorEnvelope>,
    pub http: Option<HttpVersions>,
    pub attach_refusal: Option<AttachRefusal>,
    pub artifacts: Option<ArtifactAnswer>,
    pub expire_at: Option<ExpireAt>,
    /// A create-task on a job younger than this (simulated) answers 404.
    pub young_job_404: Option<DurationValue>,
    pub links_next: Option<LinkForm>,
    pub last_page: Option<LastPage>,
    pub timestamps: Option<TimeFormat>,
    pub retry_after: Option<RetryAfterForm>,
}

/// The four shapes the scenario's `[api]` table may set instead of `[shapes]`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiShapes {
    pub links_next: Option<LinkForm>,
    pub last_page: Option<LastPage>,
    pub timestamps: Option<TimeFormat>,
    pub retry_after: Option<RetryAfterForm>,
}

impl ShapesSpec {
    /// The `[api]` keys this table may set too (a file may set each in one table only).
    pub(crate) const API_KEYS: [&'static str; 4] =
        ["links_next", "last_page", "timestamps", "retry_after"];

    /// The `[api]` keys set in both tables.
    pub(crate) fn also_in_api(&self, api: &ApiShapes) -> Vec<&'static str> {
        let both = [
            self.links_next.is_some() && api.links_next.is_some(),
            self.last_page.is_some() && api.last_page.is_some(),
            self.timestamps.is_some() && api.timestamps.is_some(),
            self.retry_after.is_some() && api.retry_after.is_some(),
        ];
        Self::API_KEYS
            .into_iter()
            .zip(both)
            .filter_map(|(key, both)| both.then_some(key))
            .collect()
    }
}

/// The values a random pick chooses from for the `[api]` keys.
const LINK_FORMS: &[LinkForm] = &[LinkForm::Url, LinkForm::Path, LinkForm::Cursor];
const LAST_PAGES: &[LastPage] = &[
    LastPage::Absent,
    LastPage::Null,
    LastPage::Empty,
    LastPage::EmptyLinks,
];
const TIME_FORMATS: &[TimeFormat] = &[
    TimeFormat::Iso,
    TimeFormat::EpochSeconds,
    TimeFormat::EpochMillis,
];
const RETRY_AFTER_FORMS: &[RetryAfterForm] = &[
    RetryAfterForm::Seconds,
    RetryAfterForm::HttpDate,
    RetryAfterForm::ResetOnly,
    RetryAfterForm::None,
];
/// The young-job windows a random pick chooses from (simulated seconds).
const YOUNG_JOB_WINDOWS: &[f64] = &[0.0, 20.0];

/// The shapes a simulator serves: every point resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shapes {
    /// The seed the unset points were picked from; `None`: they are the documented ones.
    pub random_seed: Option<u64>,
    pub children: ChildrenShape,
    pub check_task_tree: CheckTaskTree,
    pub scopes: ScopesShape,
    pub enum_case: EnumCase,
    pub statuses: StatusWords,
    pub task_type: TaskTypeShape,
    pub error_envelope: ErrorEnvelope,
    pub http: HttpVersions,
    pub attach_refusal: AttachRefusal,
    pub artifacts: ArtifactAnswer,
    pub expire_at: ExpireAt,
    /// Simulated seconds during which a new job refuses tasks (404).
    pub young_job_404: f64,
    pub links_next: LinkForm,
    pub last_page: LastPage,
    pub timestamps: TimeFormat,
    pub retry_after: RetryAfterForm,
}

impl Default for Shapes {
    /// The documented shapes.
    fn default() -> Shapes {
        Shapes::resolve(&ShapesSpec::default(), &ApiShapes::default())
    }
}

impl Shapes {
    /// Each point: the table's value (or, for the four `[api]` keys, `[api]`'s), else the
    /// pick from `random_seed`, else the documented value.
    pub(crate) fn resolve(spec: &ShapesSpec, api: &ApiShapes) -> Shapes {
        let seed = spec.random_seed;
        let pick = |key: &str, count: usize| {
            seed.map(|seed| {
                (dice::roll(seed, &[b"shape", key.as_bytes()]) % count.max(1) as u64) as usize
            })
        };
        fn choose<T: Copy + Default>(set: Option<T>, picked: Option<usize>, all: &[T]) -> T {
            set.or_else(|| picked.and_then(|index| all.get(index).copied()))
                .unwrap_or_default()
        }
        macro_rules! point {
            ($field:ident, $all:expr) => {
                choose(spec.$field, pick(stringify!($field), $all.len()), $all)
            };
        }
        Shapes {
            random_seed: seed,
            children: point!(children, ChildrenShape::ALL),
            check_task_tree: point!(check_task_tree, CheckTaskTree::ALL),
            scopes: point!(scopes, ScopesShape::ALL),
            enum_case: point!(enum_case, EnumCase::ALL),
            statuses: point!(statuses, StatusWords::ALL),
            task_type: point!(task_type, TaskTypeShape::ALL),
            error_envelope: point!(error_envelope, ErrorEnvelope::ALL),
            http: point!(http, HttpVersions::ALL),
            attach_refusal: point!(attach_refusal, AttachRefusal::ALL),
            artifacts: point!(artifacts, ArtifactAnswer::ALL),
            expire_at: point!(expire_at, ExpireAt::ALL),
            young_job_404: spec.young_job_404.map_or_else(
                || {
                    pick("young_job_404", YOUNG_JOB_WINDOWS.len())
                        .map_or(0.0, |index| YOUNG_JOB_WINDOWS[index])
                },
                DurationValue::secs,
            ),
            links_next: choose(
                api.links_next.or(spec.links_next),
                pick("links_next", LINK_FORMS.len()),
                LINK_FORMS,
            ),
            last_page: choose(
                api.last_page.or(spec.last_page),
                pick("last_page", LAST_PAGES.len()),
                LAST_PAGES,
            ),
            timestamps: choose(
                api.timestamps.or(spec.timestamps),
                pick("timestamps", TIME_FORMATS.len()),
                TIME_FORMATS,
            ),
            retry_after: choose(
                api.retry_after.or(spec.retry_after),
                pick("retry_after", RETRY_AFTER_FORMS.len()),
                RETRY_AFTER_FORMS,
            ),
        }
    }

    /// One line naming every point's value, as `[shapes]` keys (so it can be pasted into a
    /// scenario), and the seed when there is one:
    /// `shapes: children=expand_only check_task_tree=root … random_seed=7`.
    pub(crate) fn summary(&self) -> String {
        let young = humantime::format_duration(Duration::from_secs_f64(self.young_job_404));
        let mut line = format!(
            "shapes: children={} check_task_tree={} scopes={} enum_case={} statuses={} \
             task_type={} error_envelope={} http={} attach_refusal={} artifacts={} \
             expire_at={} young_job_404={young} links_next={} last_page={} timestamps={} \
             retry_after={}",
            self.children.as_str(),
            self.check_task_tree.as_str(),
            self.scopes.as_str(),
            self.enum_case.as_str(),
            self.statuses.as_str(),
            self.task_type.as_str(),
            self.error_envelope.as_str(),
            self.http.as_str(),
            self.attach_refusal.as_str(),
            self.artifacts.as_str(),
            self.expire_at.as_str(),
            serde_name(self.links_next),
            serde_name(self.last_page),
            serde_name(self.timestamps),
            serde_name(self.retry_after),
        );
        if let Some(seed) = self.random_seed {
            line.push_str(&format!(" random_seed={seed}"));
        }
        line
    }

    /// The served spelling of a canonical `status` (`IN_PROGRESS`, `STOPPED`…).
    pub(crate) fn status_word(&self, canonical: &str) -> String {
        transform::status_word(canonical, self.enum_case, self.statuses)
    }

    /// The served spelling of a canonical `outcome`.
    pub(crate) fn outcome_word(&self, canonical: &str) -> String {
        transform::spell(canonical, self.enum_case)
    }

    /// Whether status trees are served exactly as rendered (no respelling needed).
    pub(crate) fn canonical_spelling(&self) -> bool {
        self.enum_case == EnumCase::Upper && self.statuses == StatusWords::Documented
    }
}

impl Shapes {
    /// Reshapes a task's whole canonical tree, before a level is selected: a Check task's
    /// checks under its root (`check_task_tree = root`), and only the scopes that `started`
    /// (`scopes = late`).
    pub(crate) fn shape_tree(
        &self,
        tree: &mut StatusNode,
        kind: &TaskKind,
        started: impl Fn(&str) -> bool,
    ) {
        if *kind == TaskKind::Check && self.check_task_tree == CheckTaskTree::Root {
            transform::checks_under_root(tree);
        }
        if self.scopes == ScopesShape::Late {
            transform::late_scopes(tree, started);
        }
    }

    /// A node read without `expandChildren=true`: no children at all (`expand_only`), or
    /// its children without theirs (`one_level`).
    pub(crate) fn unexpanded(&self, node: &mut StatusNode) {
        match self.children {
            ChildrenShape::ExpandOnly => node.children.clear(),
            ChildrenShape::OneLevel => transform::collapse_grandchildren(node),
        }
    }

    /// Respells every `status` and `outcome` of a status node's JSON, recursively.
    pub(crate) fn spell_tree(&self, node: &mut Value) {
        transform::spell_tree(node, self.enum_case, self.statuses);
    }
}

/// The snake_case name serde gives a unit variant.
fn serde_name<T: Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
