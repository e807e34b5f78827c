//! Where the API lives under a base URL: shared by the cloud client, which builds its
//! requests on it, and by paging, which resolves `links.next` against it.

use url::Url;

/// The path of the public migration API under `--cloud-api-url`.
pub(super) const API_PATH: &str = "/migrations/public/v1";

/// `url` with `path` appended to its path (no double slash, query kept out).
pub(super) fn join_path(url: &Url, path: &str) -> Url {
    let mut joined = url.clone();
    let prefix = url.path().trim_end_matches('/');
    joined.set_path(&format!("{prefix}{path}"));
    joined
}
