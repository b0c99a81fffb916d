//! Behaviour tests of `OpendalUfs`, written once (`cases`) and run against both backends: the local
//! file system (`fs`) and a real S3 server (`s3`, moto on a free port). OpenDAL-testkit style: each case
//! is a generic async fn over an [`cases::Env`]; a macro stamps one `#[tokio::test]` per case per backend.

mod cases;
mod fs;
mod s3;

/// One `#[tokio::test]` per named case, each with a fresh backend from `$setup`.
#[macro_export]
macro_rules! behaviour_tests {
    ($setup:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (env, _guard) = $setup();
                $crate::behaviour::cases::$case(env).await;
            }
        )*
    };
}
