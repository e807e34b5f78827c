//! How a scenario's tables resolve to shapes, and how the shapes reshape a status tree.

use super::*;
use crate::cma::wire::{Outcome, Status, StatusNode, TaskKind};
use crate::sim::scenario::Scenario;

fn node(status: Status, outcome: Option<Outcome>) -> StatusNode {
    StatusNode {
        status: Some(status),
        outcome,
        ..StatusNode::default()
    }
}

/// root → check → {A, B}; and for a Migrate task, migrate → {projects, jsm, apps}.
fn tree(migrate: bool) -> StatusNode {
    let mut check = node(Status::Finished, Some(Outcome::Success));
    for name in ["A", "B"] {
        check
            .children
            .insert(name.into(), node(Status::Finished, Some(Outcome::Success)));
    }
    let mut root = node(Status::InProgress, None);
    root.children.insert("check".into(), check);
    if migrate {
        let mut level = node(Status::InProgress, None);
        level
            .children
            .insert("projects".into(), node(Status::InProgress, None));
        level
            .children
            .insert("apps".into(), node(Status::Pending, None));
        level
            .children
            .insert("jsm".into(), node(Status::Finished, Some(Outcome::Skipped)));
        root.children.insert("migrate".into(), level);
    }
    root
}

fn names(node: &StatusNode) -> Vec<&str> {
    node.children.keys().map(String::as_str).collect()
}

#[test]
fn a_check_task_has_its_checks_under_the_root_unless_check_node_is_chosen() {
    let shapes = Shapes::default();
    let mut check_task = tree(false);
    shapes.shape_tree(&mut check_task, &TaskKind::Check, |_| true);
    assert_eq!(names(&check_task), ["A", "B"]);
    assert_eq!(
        check_task.status,
        Some(Status::InProgress),
        "the root keeps its fields"
    );

    let mut migrate_task = tree(true);
    shapes.shape_tree(&mut migrate_task, &TaskKind::Migrate, |_| true);
    assert_eq!(
        names(&migrate_task),
        ["check", "migrate"],
        "Migrate tasks keep both"
    );

    let today = Shapes {
        check_task_tree: CheckTaskTree::CheckNode,
        ..Shapes::default()
    };
    let mut check_task = tree(false);
    today.shape_tree(&mut check_task, &TaskKind::Check, |_| true);
    assert_eq!(names(&check_task), ["check"]);
}

#[test]
fn late_scopes_show_only_the_started_ones() {
    let mut late = tree(true);
    Shapes::default().shape_tree(&mut late, &TaskKind::Migrate, |name| name == "projects");
    assert_eq!(names(&late.children["migrate"]), ["projects"]);
    let all = Shapes {
        scopes: ScopesShape::All,
        ..Shapes::default()
    };
    let mut every = tree(true);
    all.shape_tree(&mut every, &TaskKind::Migrate, |_| false);
    assert_eq!(
        names(&every.children["migrate"]),
        ["apps", "jsm", "projects"]
    );
}

#[test]
fn children_come_unasked_only_one_level_deep_or_not_at_all() {
    let mut expand_only = tree(true);
    Shapes::default().unexpanded(&mut expand_only);
    assert!(expand_only.children.is_empty());
    let one_level = Shapes {
        children: ChildrenShape::OneLevel,
        ..Shapes::default()
    };
    let mut root = tree(true);
    one_level.unexpanded(&mut root);
    assert_eq!(names(&root), ["check", "migrate"]);
    assert!(root.children.values().all(|c| c.children.is_empty()));
}

#[test]
fn without_a_table_every_point_is_documented() {
    let shapes = Scenario::default().shapes();
    assert_eq!(shapes, Shapes::default());
    assert_eq!(
        shapes.summary(),
        "shapes: children=expand_only check_task_tree=root scopes=late enum_case=upper \
         statuses=documented task_type=lower error_envelope=error_message http=both \
         attach_refusal=400 artifacts=file expire_at=future young_job_404=0s \
         links_next=url last_page=absent timestamps=iso retry_after=seconds"
    );
    assert!(shapes.canonical_spelling());
}

#[test]
fn the_table_sets_points_and_numbers_are_accepted_for_codes() {
    let scenario = Scenario::parse_toml(
        "[shapes]\nchildren = \"one_level\"\nattach_refusal = 409\nenum_case = \"Title\"\n\
         young_job_404 = \"20s\"\nlinks_next = \"cursor\"\n",
    )
    .unwrap();
    let shapes = scenario.shapes();
    assert_eq!(shapes.children, ChildrenShape::OneLevel);
    assert_eq!(shapes.attach_refusal, AttachRefusal::Conflict);
    assert_eq!(
        shapes.attach_refusal.status(),
        axum::http::StatusCode::CONFLICT
    );
    assert_eq!(shapes.enum_case, EnumCase::Title);
    assert_eq!(shapes.young_job_404, 20.0);
    assert_eq!(shapes.links_next, LinkForm::Cursor);
    assert_eq!(scenario.api().shapes.links_next, LinkForm::Cursor);
    assert_eq!(shapes.scopes, ScopesShape::Late, "unset points: documented");
    assert!(!shapes.canonical_spelling());
}

#[test]
fn bad_keys_and_values_are_refused_with_their_line() {
    let err = Scenario::parse_toml("seed = 1\n[shapes]\nchildren = \"some\"\n").unwrap_err();
    assert!(err.starts_with("line 3"), "{err}");
    assert!(
        err.contains("unknown children shape `some`, expected one of expand_only, one_level"),
        "{err}"
    );
    let err = Scenario::parse_toml("[shapes]\n\nattach_refusal = 418\n").unwrap_err();
    assert!(
        err.starts_with("line 3") && err.contains("400, 403, 409, 500"),
        "{err}"
    );
    let err = Scenario::parse_toml("[shapes]\nchilren = \"one_level\"\n").unwrap_err();
    assert!(
        err.starts_with("line 2") && err.contains("unknown field `chilren`"),
        "{err}"
    );
    let err = Scenario::parse_toml("[shapes]\nyoung_job_404 = \"soon\"\n").unwrap_err();
    assert!(err.starts_with("line 2"), "{err}");
    let err = Scenario::parse_yaml("shapes:\n  http: h3\n").unwrap_err();
    assert!(
        err.starts_with("line 2") && err.contains("both, http1"),
        "{err}"
    );
}

#[test]
fn an_api_key_may_be_set_in_one_table_only() {
    let text = "[api]\ntimestamps = \"iso\"\n[shapes]\ntimestamps = \"epoch_millis\"\n";
    let err = Scenario::parse_toml(text).unwrap_err();
    assert!(
        err.starts_with("line 4: ") && err.contains("`timestamps`"),
        "{err}"
    );
}

#[test]
fn a_seed_picks_the_unset_points_the_same_way_every_time() {
    let picked = |seed| Scenario::default().with_random_shapes(seed).shapes();
    assert_eq!(picked(7), picked(7));
    assert_eq!(picked(7).random_seed, Some(7));
    assert!(picked(7).summary().ends_with(" random_seed=7"));
    // Across seeds, every value of every point comes up.
    let all: Vec<Shapes> = (0..200).map(picked).collect();
    for value in TaskTypeShape::ALL {
        assert!(all.iter().any(|s| s.task_type == *value), "{value:?}");
    }
    for value in ErrorEnvelope::ALL {
        assert!(all.iter().any(|s| s.error_envelope == *value), "{value:?}");
    }
    for value in RETRY_AFTER_FORMS {
        assert!(all.iter().any(|s| s.retry_after == *value), "{value:?}");
    }
    assert!(all.iter().any(|s| s.young_job_404 == 20.0));
    assert!(all.iter().any(|s| s.young_job_404 == 0.0));
    assert!(all.iter().any(|s| s.children == ChildrenShape::OneLevel));
    // What a table (or [api]) sets is never picked.
    let set =
        Scenario::parse_toml("[api]\nlinks_next = \"path\"\n[shapes]\nhttp = \"both\"\n").unwrap();
    for seed in 0..50 {
        let shapes = set.clone().with_random_shapes(seed).shapes();
        assert_eq!(shapes.http, HttpVersions::Both);
        assert_eq!(shapes.links_next, LinkForm::Path);
    }
}

#[test]
fn a_table_seed_is_random_mode_unless_documented_is_asked() {
    let scenario = Scenario::parse_toml("[shapes]\nrandom_seed = 11\n").unwrap();
    assert_eq!(
        scenario.shapes(),
        Scenario::default().with_random_shapes(11).shapes()
    );
    let documented = scenario.with_documented_shapes();
    assert_eq!(documented.shapes(), Shapes::default());
}
