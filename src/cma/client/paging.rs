//! Where the next page is: `links.next` as a full URL (same origin only), a path, a query, or
//! a bare cursor, resolved against the request that returned it; and the loop guard.

use std::collections::HashSet;

use url::Url;

use crate::cma::wire::NextPage;

/// The most pages one listing follows (20 tasks a page: 10,000 tasks).
pub(super) const MAX_PAGES: usize = 500;

/// The pages of one listing: resolves each `links.next` and stops on a repeat.
pub(super) struct Pages {
    /// `{api_url}/migrations/public/v1`: the origin and path prefix links must stay in.
    base: Url,
    /// The first page's URL: its query (`level`, `expandChildren`) carries to every page.
    first: Url,
    /// Every page URL requested so far (the loop guard).
    seen: HashSet<String>,
}

/// Why a `links.next` cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PageError {
    /// A full URL on another origin: credentials must not go there.
    ForeignOrigin(String),
    /// Not a URL at all.
    Malformed(String),
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::ForeignOrigin(origin) => write!(
                f,
                "the next-page link points to another origin ({origin}); it is not followed"
            ),
            PageError::Malformed(reason) => write!(f, "the next-page link is malformed: {reason}"),
        }
    }
}

impl Pages {
    pub(super) fn new(base: &Url, first: &Url) -> Pages {
        Pages {
            base: base.clone(),
            first: first.clone(),
            seen: HashSet::from([first.to_string()]),
        }
    }

    /// How many pages have been requested.
    #[cfg(test)]
    pub(super) fn count(&self) -> usize {
        self.seen.len()
    }

    /// The URL of the next page, `Ok(None)` when the listing is complete: no link, a link
    /// back to a page already read (a loop), or the page limit reached.
    pub(super) fn next(
        &mut self,
        current: &Url,
        next: Option<NextPage>,
    ) -> Result<Option<Url>, PageError> {
        let Some(next) = next else {
            return Ok(None);
        };
        let url = self.resolve(current, &next)?;
        if self.seen.len() >= MAX_PAGES {
            tracing::warn!(
                pages = MAX_PAGES,
                "stopped following pages at the page limit"
            );
            return Ok(None);
        }
        if !self.seen.insert(url.to_string()) {
            tracing::warn!("the next-page link repeats a page already read; stopping there");
            return Ok(None);
        }
        Ok(Some(url))
    }

    fn resolve(&self, current: &Url, next: &NextPage) -> Result<Url, PageError> {
        let mut url = match next {
            NextPage::Url(text) => {
                let url = Url::parse(text).map_err(|err| PageError::Malformed(err.to_string()))?;
                if url.origin() != self.base.origin() {
                    return Err(PageError::ForeignOrigin(url.origin().ascii_serialization()));
                }
                url
            }
            NextPage::Path(path) if path.starts_with('?') => current
                .join(path)
                .map_err(|err| PageError::Malformed(err.to_string()))?,
            NextPage::Path(path) => {
                let prefix = self.base.path().trim_end_matches('/');
                let api_prefix = prefix
                    .strip_suffix(super::paths::API_PATH)
                    .unwrap_or(prefix);
                // The service's paths start at the host; tolerate paths relative to the API
                // root (`/migrations/…`) or to the versioned base (`/jobs/…`) too, so a
                // deployment under a path prefix keeps working.
                let full = if path.starts_with(prefix) && !prefix.is_empty() {
                    path.clone()
                } else if path.starts_with(super::paths::API_PATH) {
                    format!("{api_prefix}{path}")
                } else {
                    format!("{prefix}{path}")
                };
                self.base
                    .join(&full)
                    .map_err(|err| PageError::Malformed(err.to_string()))?
            }
            NextPage::Cursor(cursor) => {
                let mut url = self.first.clone();
                set_query(&mut url, "cursor", cursor);
                url
            }
        };
        // Keep the first request's parameters a link forgot (never its cursor).
        for (key, value) in self.first.query_pairs() {
            if key != "cursor" && !url.query_pairs().any(|(k, _)| k == key) {
                url.query_pairs_mut().append_pair(&key, &value);
            }
        }
        Ok(url)
    }
}

/// Sets `key` to `value`, replacing any earlier value.
fn set_query(url: &mut Url, key: &str, value: &str) {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut pairs = url.query_pairs_mut();
    pairs.clear();
    for (k, v) in &kept {
        pairs.append_pair(k, v);
    }
    pairs.append_pair(key, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(base: &str, first: &str) -> (Pages, Url) {
        let base = Url::parse(base).unwrap();
        let first = Url::parse(first).unwrap();
        (Pages::new(&base, &first), first)
    }

    fn next(pages: &mut Pages, current: &Url, link: &str) -> Result<Option<Url>, PageError> {
        let links = crate::cma::wire::Links {
            self_link: None,
            next: Some(link.to_owned()),
        };
        pages.next(current, links.next_page())
    }

    const BASE: &str = "https://api.example/migrations/public/v1";
    const FIRST: &str = "https://api.example/migrations/public/v1/jobs/j/tasks/t/status?level=check&expandChildren=true";

    #[test]
    fn every_form_of_next_resolves_to_the_same_origin() {
        let (mut p, first) = pages(BASE, FIRST);
        let cursor = next(&mut p, &first, "abc").unwrap().unwrap();
        assert_eq!(
            cursor.as_str(),
            "https://api.example/migrations/public/v1/jobs/j/tasks/t/status?level=check&expandChildren=true&cursor=abc"
        );
        let path = next(
            &mut p,
            &cursor,
            "/migrations/public/v1/jobs/j/tasks/t/status?cursor=def&level=check&expandChildren=true",
        )
        .unwrap()
        .unwrap();
        assert_eq!(path.path(), "/migrations/public/v1/jobs/j/tasks/t/status");
        assert!(path.query().unwrap().contains("cursor=def"));
        // A path relative to the versioned base, missing our parameters: they are added.
        let short = next(&mut p, &path, "/jobs/j/tasks/t/status?cursor=ghi")
            .unwrap()
            .unwrap();
        assert_eq!(
            short.as_str(),
            "https://api.example/migrations/public/v1/jobs/j/tasks/t/status?cursor=ghi&level=check&expandChildren=true"
        );
        let query = next(&mut p, &short, "?cursor=jkl").unwrap().unwrap();
        assert!(
            query
                .as_str()
                .ends_with("status?cursor=jkl&level=check&expandChildren=true")
        );
        let full = next(
            &mut p,
            &query,
            "https://api.example/migrations/public/v1/jobs/j/tasks/t/status?cursor=mno&level=check&expandChildren=true",
        )
        .unwrap()
        .unwrap();
        assert!(full.query().unwrap().contains("cursor=mno"));
        assert_eq!(p.count(), 6);
    }

    #[test]
    fn a_full_url_on_another_origin_is_refused() {
        let (mut p, first) = pages(BASE, FIRST);
        for link in [
            "https://evil.example/migrations/public/v1/jobs/j/tasks?cursor=x",
            "http://api.example/migrations/public/v1/jobs/j/tasks?cursor=x",
            "https://api.example:8443/migrations/public/v1/jobs/j/tasks?cursor=x",
        ] {
            let err = next(&mut p, &first, link).unwrap_err();
            assert!(matches!(err, PageError::ForeignOrigin(_)), "{link}: {err}");
            assert!(err.to_string().contains("another origin"));
        }
    }

    #[test]
    fn a_loop_or_no_link_ends_the_listing() {
        let (mut p, first) = pages(
            BASE,
            "https://api.example/migrations/public/v1/jobs/j/tasks",
        );
        assert_eq!(p.next(&first, None), Ok(None));
        let second = next(&mut p, &first, "c1").unwrap().unwrap();
        assert_eq!(next(&mut p, &second, "c1"), Ok(None));
        assert_eq!(
            next(
                &mut p,
                &second,
                "https://api.example/migrations/public/v1/jobs/j/tasks"
            ),
            Ok(None)
        );
    }

    #[test]
    fn the_page_limit_ends_the_listing() {
        let (mut p, first) = pages(
            BASE,
            "https://api.example/migrations/public/v1/jobs/j/tasks",
        );
        let mut current = first;
        let mut followed = 0;
        while let Some(url) = next(&mut p, &current, &format!("c{followed}")).unwrap() {
            current = url;
            followed += 1;
        }
        assert_eq!(followed, MAX_PAGES - 1);
    }

    #[test]
    fn a_base_under_a_path_prefix_keeps_its_prefix() {
        let (mut p, first) = pages(
            "https://proxy.example/atl/migrations/public/v1",
            "https://proxy.example/atl/migrations/public/v1/jobs/j/tasks",
        );
        let a = next(
            &mut p,
            &first,
            "/migrations/public/v1/jobs/j/tasks?cursor=1",
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.path(), "/atl/migrations/public/v1/jobs/j/tasks");
        let b = next(
            &mut p,
            &a,
            "/atl/migrations/public/v1/jobs/j/tasks?cursor=2",
        )
        .unwrap()
        .unwrap();
        assert_eq!(b.path(), "/atl/migrations/public/v1/jobs/j/tasks");
    }
}
