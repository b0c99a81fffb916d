use super::*;
use clap::{CommandFactory, Parser};
use std::path::Path;

/// A group like the processes' own: sizes, durations, lists, booleans, a secret.
#[derive(clap::Args, serde::Serialize, serde::Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "kebab-case")]
struct Sample {
    /// A size.
    #[arg(long)]
    page_size: Option<ByteSize>,
    /// A duration.
    #[arg(long)]
    max_age: Option<HumaneDuration>,
    /// A list.
    #[arg(long)]
    #[serde(default, deserialize_with = "values::path_list")]
    cache_dir: Option<Vec<PathBuf>>,
    /// A switch.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    anonymous: Option<bool>,
    /// A secret from the environment.
    #[arg(long, env = "LOAM_CONFIG_TEST_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
}

impl Group for Sample {
    const TITLE: &'static str = "Sample";
    fn defaults() -> Self {
        Self {
            page_size: Some(ByteSize(1 << 20)),
            max_age: Some(HumaneDuration::secs(60)),
            anonymous: Some(false),
            ..Self::default()
        }
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    sample: Sample,
}

fn parse(args: &[&str]) -> (Sample, ArgMatches) {
    let matches = Cli::command().try_get_matches_from(std::iter::once("t").chain(args.iter().copied())).unwrap();
    (<Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap().sample, matches)
}

fn file(text: &str) -> ConfigFile {
    ConfigFile::parse(text, Path::new("s.toml")).unwrap()
}

#[test]
fn later_layers_win_and_every_value_keeps_its_source() {
    let f = file("page-size = \"4KiB\"\nmax-age = \"500ms\"\ncache-dir = \"/f\"\n");
    let (args, m) = parse(&["--max-age", "1h30m", "--cache-dir", "/a", "--cache-dir", "/b"]);
    let l = Resolver::<Sample>::new().file(Some(&f)).unwrap().args(&args, Some(&m)).resolve().unwrap();
    assert_eq!(l.value.page_size, Some(ByteSize(4096)));
    assert_eq!(l.value.max_age, Some(HumaneDuration::secs(5400)));
    assert_eq!(
        l.value.cache_dir,
        Some(vec![PathBuf::from("/a"), PathBuf::from("/b")]),
        "a flag list replaces the file's"
    );
    assert_eq!(l.value.anonymous, Some(false));
    assert_eq!(l.source("page-size"), Some(&Source::File { path: "s.toml".into(), line: Some(1) }));
    assert_eq!(l.source("max-age"), Some(&Source::Flag("--max-age".into())));
    assert_eq!(l.source("anonymous"), Some(&Source::Default));
    assert_eq!(l.source("secret-key"), None);
    assert!(l.is_given("page-size") && !l.is_given("anonymous"));
    assert_eq!(l.named("page-size"), "`page-size` (file s.toml, line 1)");
}

#[test]
fn the_environment_is_told_from_flags() {
    // SAFETY: no other test of this binary reads or writes this variable.
    unsafe { std::env::set_var("LOAM_CONFIG_TEST_SECRET_KEY", "from-env") };
    let (args, m) = parse(&["--anonymous"]);
    unsafe { std::env::remove_var("LOAM_CONFIG_TEST_SECRET_KEY") };
    let l = Resolver::<Sample>::new().args(&args, Some(&m)).resolve().unwrap();
    assert_eq!(l.value.secret_key.as_deref(), Some("from-env"));
    assert_eq!(l.source("secret-key"), Some(&Source::Env("LOAM_CONFIG_TEST_SECRET_KEY".into())));
    assert_eq!(l.source("anonymous"), Some(&Source::Flag("--anonymous".into())));
    let printed = render::Printout::new("t").group(&l).to_string();
    assert!(!printed.contains("from-env"), "{printed}");
    assert!(
        printed.contains("secret-key = \"******\"") && printed.contains("# environment LOAM_CONFIG_TEST_SECRET_KEY")
    );
    assert!(printed.contains("page-size = \"1MiB\"") && printed.contains("# default"), "{printed}");
}

#[test]
fn printed_settings_read_back_as_a_config_file() {
    let f = file("page-size = 1000\nmax-age = 90\ncache-dir = [\"/x\", \"/y\"]\nanonymous = true\n");
    let l = Resolver::<Sample>::new().file(Some(&f)).unwrap().resolve().unwrap();
    let printed = render::Printout::new("t").group(&l).to_string();
    let again = ConfigFile::parse(&printed, Path::new("p.toml")).unwrap();
    let l2 = Resolver::<Sample>::new().file(Some(&again)).unwrap().resolve().unwrap();
    assert_eq!(l.value, l2.value, "{printed}");
}

#[test]
fn bad_values_name_their_key_and_line() {
    let f = file("\nmax-age = \"soon\"\n");
    let e = Resolver::<Sample>::new().file(Some(&f)).err().unwrap().to_string();
    assert!(
        e.starts_with("config file s.toml, line 2: ") && e.contains("max-age") && e.contains("invalid duration"),
        "{e}"
    );
    let f = file("page-size = -1\n");
    let e = Resolver::<Sample>::new().file(Some(&f)).err().unwrap().to_string();
    assert!(e.contains("negative"), "{e}");
}

#[test]
fn field_names_are_the_keys() {
    assert_eq!(field_names::<Sample>(), ["page-size", "max-age", "cache-dir", "anonymous", "secret-key"]);
    let node = field_names::<NodeSettings>();
    assert_eq!(
        node[..11],
        [
            "etcd",
            "cluster-name",
            "etcd-ca-cert",
            "etcd-cert",
            "etcd-key",
            "etcd-user",
            "etcd-password-file",
            "host",
            "advertise-host",
            "data-dir",
            "quota-check-interval"
        ]
    );
    assert!(node.contains(&"auth-token-file") && node.contains(&"jwt-subject-role"), "{node:?}");
}

#[test]
fn the_reference_lists_flags_defaults_and_hand_written_keys() {
    let md = reference::markdown(
        "# R",
        &[reference::Section::of::<Sample>("`t`"), reference::Section::of::<NodeSettings>("all")],
    );
    assert!(md.contains("| `page-size` | `--page-size` | `\"1MiB\"` | A size |"), "{md}");
    assert!(
        md.contains(
            "| `secret-key` | `--secret-key`, `LOAM_CONFIG_TEST_SECRET_KEY` | none | A secret from the environment |"
        ),
        "{md}"
    );
    assert!(md.contains("| `etcd` | `--etcd URL[,URL...]`, `LOAM_ETCD` | none |"), "{md}");
    assert!(md.contains("| `cluster-name` |") && md.contains("`\"DefaultAlluxioCluster\"`"), "{md}");
}
