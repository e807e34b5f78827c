//! SKELETON (sim branch).
use tokio_util::sync::CancellationToken;
pub async fn run(args: &crate::cli::SimArgs, shutdown: CancellationToken) -> u8 {
    let _ = (args, shutdown);
    todo!()
}
