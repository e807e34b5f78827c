//! SKELETON (state branch).
pub fn run(args: &crate::cli::StatusArgs) -> u8 {
    let _ = args;
    todo!()
}
