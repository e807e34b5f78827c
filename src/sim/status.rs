//! Serving a status tree: choosing the node a `level` names, filtering its children by
//! `status`/`outcome`, cutting grandchildren unless `expandChildren=true`, paginating the
//! children with an opaque cursor, and writing `links` in the scenario's form.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::cma::wire::StatusNode;

use super::shapes::Shapes;
use super::values::{LastPage, LinkForm, StatusOrder};

/// The node at `level` (`check`, `migrate`, `check,AnonPermission`, `migrate,projects`…),
/// or `None` when the tree has no such node. Names match exactly, else ignoring case.
pub(crate) fn select(tree: StatusNode, level: Option<&str>) -> Option<StatusNode> {
    let Some(level) = level.map(str::trim).filter(|l| !l.is_empty()) else {
        return Some(tree);
    };
    let mut node = tree;
    for name in level.split(',').map(str::trim) {
        let key = if node.children.contains_key(name) {
            name.to_owned()
        } else {
            node.children
                .keys()
                .find(|key| key.eq_ignore_ascii_case(name))?
                .clone()
        };
        node = node.children.remove(&key)?;
    }
    Some(node)
}

/// Keeps the children whose status (and outcome) is among the comma-separated values given,
/// each in its canonical spelling or in the one `shapes` serves (`RUNNING`, `in_progress`).
pub(crate) fn filter_children(
    node: &mut StatusNode,
    status: Option<&str>,
    outcome: Option<&str>,
    shapes: &Shapes,
) {
    let wanted =
        |list: Option<&str>, value: Option<&str>, served: &dyn Fn(&str) -> String| match list {
            None => true,
            Some(list) => value.is_some_and(|value| {
                let served = served(value);
                list.split(',').map(str::trim).any(|item| {
                    item.eq_ignore_ascii_case(value) || item.eq_ignore_ascii_case(&served)
                })
            }),
        };
    node.children.retain(|_, child| {
        wanted(status, child.status.as_ref().map(|s| s.as_str()), &|s| {
            shapes.status_word(s)
        }) && wanted(outcome, child.outcome.as_ref().map(|o| o.as_str()), &|o| {
            shapes.outcome_word(o)
        })
    });
}

/// An opaque cursor for an offset.
pub(crate) fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

/// The offset of a cursor, or `None` when it is not one of ours.
pub(crate) fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

/// Keeps one page of the node's children, in `order`; returns whether more follow.
pub(crate) fn page_children(
    node: &mut StatusNode,
    offset: usize,
    size: usize,
    order: StatusOrder,
) -> bool {
    let total = node.children.len();
    let mut names: Vec<(&String, &StatusNode)> = node.children.iter().collect();
    if order == StatusOrder::UnfinishedFirst {
        // Stable: each group stays in name order.
        names.sort_by_key(|(_, child)| child.is_finished());
    }
    let keep: Vec<String> = names
        .into_iter()
        .skip(offset)
        .take(size)
        .map(|(name, _)| name.clone())
        .collect();
    node.children.retain(|name, _| keep.contains(name));
    offset + size < total
}

/// Where the request was sent, to build links from.
#[derive(Debug, Clone)]
pub(crate) struct RequestUrl {
    /// `http://HOST` from the Host header.
    pub origin: String,
    pub path: String,
    /// Query pairs other than `cursor`, in request order.
    pub query: Vec<(String, String)>,
}

impl RequestUrl {
    fn with_cursor(&self, cursor: Option<&str>) -> String {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in &self.query {
            serializer.append_pair(key, value);
        }
        if let Some(cursor) = cursor {
            serializer.append_pair("cursor", cursor);
        }
        let query = serializer.finish();
        if query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{query}", self.path)
        }
    }
}

/// The `links` object of a page: `self`, and `next` in the scenario's form (or the
/// scenario's way of saying "last page").
pub(crate) fn links(
    url: &RequestUrl,
    current: Option<&str>,
    next: Option<&str>,
    form: LinkForm,
    last: LastPage,
) -> Value {
    let full = |path: String| match form {
        LinkForm::Url => format!("{}{path}", url.origin),
        LinkForm::Path | LinkForm::Cursor => path,
    };
    let mut links = Map::new();
    match next {
        Some(cursor) => {
            links.insert("self".into(), json!(full(url.with_cursor(current))));
            let next = match form {
                LinkForm::Cursor => cursor.to_owned(),
                LinkForm::Url | LinkForm::Path => full(url.with_cursor(Some(cursor))),
            };
            links.insert("next".into(), json!(next));
        }
        None => match last {
            LastPage::EmptyLinks => {}
            LastPage::Absent => {
                links.insert("self".into(), json!(full(url.with_cursor(current))));
            }
            LastPage::Null => {
                links.insert("self".into(), json!(full(url.with_cursor(current))));
                links.insert("next".into(), Value::Null);
            }
            LastPage::Empty => {
                links.insert("self".into(), json!(full(url.with_cursor(current))));
                links.insert("next".into(), json!(""));
            }
        },
    }
    Value::Object(links)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cma::wire::{Links, NextPage, Status};

    fn tree(children: usize) -> StatusNode {
        let mut level = StatusNode {
            status: Some(Status::InProgress),
            ..StatusNode::default()
        };
        for index in 0..children {
            let mut check = StatusNode {
                status: Some(if index % 2 == 0 {
                    Status::Finished
                } else {
                    Status::InProgress
                }),
                ..StatusNode::default()
            };
            check.children.insert("leaf".into(), StatusNode::default());
            level.children.insert(format!("Check{index:02}"), check);
        }
        let mut root = StatusNode::default();
        root.children.insert("check".into(), level);
        root
    }

    #[test]
    fn levels_name_subtrees() {
        assert!(select(tree(3), Some("check")).is_some());
        assert!(select(tree(3), Some("CHECK,check01")).is_some());
        assert!(select(tree(3), Some("migrate")).is_none());
        assert!(select(tree(3), Some("check,Nope")).is_none());
        assert_eq!(select(tree(3), None).unwrap().children.len(), 1);
    }

    #[test]
    fn pages_cover_every_child_once() {
        let full = select(tree(16), Some("check")).unwrap();
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let mut page = full.clone();
            let more = page_children(&mut page, offset, 10, StatusOrder::Name);
            seen.extend(page.children.keys().cloned());
            if !more {
                break;
            }
            offset = decode_cursor(&encode_cursor(offset + 10)).unwrap();
        }
        assert_eq!(seen, full.children.keys().cloned().collect::<Vec<_>>());
        assert_eq!(decode_cursor("garbage!"), None);
    }

    #[test]
    fn unfinished_first_moves_children_between_pages_as_they_finish() {
        // Check00, 02, 04 … are finished; the odd ones run.
        let full = select(tree(6), Some("check")).unwrap();
        let mut first = full.clone();
        assert!(page_children(
            &mut first,
            0,
            3,
            StatusOrder::UnfinishedFirst
        ));
        assert_eq!(
            first.children.keys().collect::<Vec<_>>(),
            ["Check01", "Check03", "Check05"]
        );
        let mut by_name = full.clone();
        page_children(&mut by_name, 0, 3, StatusOrder::Name);
        assert_eq!(
            by_name.children.keys().collect::<Vec<_>>(),
            ["Check00", "Check01", "Check02"]
        );
    }

    #[test]
    fn filters_and_collapse() {
        let mut level = select(tree(4), Some("check")).unwrap();
        let mut unknown = level.clone();
        filter_children(&mut level, Some("in_progress"), None, &Shapes::default());
        assert_eq!(level.children.len(), 2);
        let words = Shapes {
            statuses: super::super::shapes::StatusWords::Unknown,
            ..Shapes::default()
        };
        filter_children(&mut unknown, Some("running"), None, &words);
        assert_eq!(unknown.children.len(), 2, "the served word filters too");
        super::super::shapes::collapse_grandchildren(&mut level);
        assert!(level.children.values().all(|c| c.children.is_empty()));
    }

    #[test]
    fn links_take_every_form_the_client_must_accept() {
        let url = RequestUrl {
            origin: "http://127.0.0.1:9".into(),
            path: "/migrations/public/v1/jobs/j/tasks/t/status".into(),
            query: vec![("level".into(), "check".into())],
        };
        let parse = |value: Value| serde_json::from_value::<Links>(value).unwrap();
        let next = |form| parse(links(&url, None, Some("abc"), form, LastPage::Absent)).next_page();
        assert_eq!(
            next(LinkForm::Url),
            Some(NextPage::Url(
                "http://127.0.0.1:9/migrations/public/v1/jobs/j/tasks/t/status?level=check&cursor=abc".into()
            ))
        );
        assert_eq!(
            next(LinkForm::Path),
            Some(NextPage::Path(
                "/migrations/public/v1/jobs/j/tasks/t/status?level=check&cursor=abc".into()
            ))
        );
        assert_eq!(next(LinkForm::Cursor), Some(NextPage::Cursor("abc".into())));
        for last in [
            LastPage::Absent,
            LastPage::Null,
            LastPage::Empty,
            LastPage::EmptyLinks,
        ] {
            let value = links(&url, Some("abc"), None, LinkForm::Url, last);
            assert_eq!(parse(value).next_page(), None);
        }
        assert_eq!(
            links(&url, None, None, LinkForm::Path, LastPage::EmptyLinks),
            json!({})
        );
        assert_eq!(
            links(&url, None, None, LinkForm::Path, LastPage::Null)["next"],
            Value::Null
        );
    }
}
