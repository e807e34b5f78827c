//! [`ServerClient`]: the server side of the API (attach, save-token) for one Server/DC
//! instance; how its refusals read is `refusal`'s.

use std::borrow::Cow;

use reqwest::Method;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::answer::basic_secrets;
use super::attempt::api_error;
use super::http::HttpClient;
use super::paths::join_path;
use super::transport::{Auth, Call};
use crate::cma::error::{ApiError, Endpoint, ErrorKind};
use crate::cma::wire::{AttachResponse, SaveTokenRequest, SaveTokenResponse};
use crate::secret::Secret;

/// The server side of the API for one Server/DC instance.
#[derive(Clone)]
pub struct ServerClient {
    http: HttpClient,
    /// `{server_url}/rest/migration/latest`.
    base: Url,
    credentials: ServerCredentials,
}

impl ServerClient {
    pub fn new(http: HttpClient, server_url: &Url, credentials: ServerCredentials) -> ServerClient {
        let mut server_url = server_url.clone();
        server_url.set_query(None);
        server_url.set_fragment(None);
        ServerClient {
            http,
            base: join_path(&server_url, "/rest/migration/latest"),
            credentials,
        }
    }

    /// `{server_url}/rest/migration/latest`.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    pub async fn attach(
        &self,
        cloud_url: &str,
        cancel: &CancellationToken,
    ) -> Result<AttachResponse, ApiError> {
        let mut url = join_path(&self.base, "/public/v1/attach");
        url.query_pairs_mut().append_pair("cloudUrl", cloud_url);
        let call = self.call(Endpoint::Attach, url, None, Vec::new());
        self.http.execute_json(&call, cancel).await
    }

    pub async fn save_token(
        &self,
        cloud_url: &str,
        token: &Secret,
        cancel: &CancellationToken,
    ) -> Result<SaveTokenResponse, ApiError> {
        let url = join_path(&self.base, "/cloud/save/token");
        let request = SaveTokenRequest {
            cloud_url: cloud_url.to_owned(),
            token: token.clone(),
        };
        let body = serde_json::to_vec(&request).map_err(|err| {
            api_error(
                Endpoint::SaveToken,
                None,
                ErrorKind::BadRequest,
                format!("cannot encode the request: {err}"),
            )
        })?;
        let call = self.call(
            Endpoint::SaveToken,
            url,
            Some(body),
            vec![token.expose().to_owned()],
        );
        self.http.execute_json(&call, cancel).await
    }

    fn call(
        &self,
        endpoint: Endpoint,
        url: Url,
        body: Option<Vec<u8>>,
        mut secrets: Vec<String>,
    ) -> Call<'_> {
        let auth = match &self.credentials {
            ServerCredentials::Bearer(token) => {
                secrets.push(token.expose().to_owned());
                Auth::Bearer(token)
            }
            ServerCredentials::Basic { username, password } => {
                secrets.extend(basic_secrets(username, password));
                Auth::Basic {
                    user: username,
                    password,
                }
            }
        };
        Call {
            endpoint,
            method: Method::POST,
            url,
            auth,
            body,
            gate: None,
            secrets: Cow::Owned(secrets),
        }
    }
}

/// How to authenticate to a Server/DC instance, resolved.
#[derive(Debug, Clone)]
pub enum ServerCredentials {
    Bearer(Secret),
    Basic { username: String, password: Secret },
}
