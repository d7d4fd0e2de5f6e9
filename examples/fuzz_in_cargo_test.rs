//! migproof's state machine in a project's own `cargo test`, through
//! `proptest-state-machine`'s `prop_state_machine!` macro. Run it with
//! `cargo test --example fuzz_in_cargo_test`.

use migproof::fuzz::sut::FuzzTest;
use proptest::test_runner::Config;
use proptest_state_machine::prop_state_machine;

prop_state_machine! {
    #![proptest_config(Config {
        cases: 3,
        failure_persistence: None,
        .. Config::default()
    })]

    // Random deploy/migrate/rollback/retry/write sequences of up to 10 steps.
    fn shop_lifecycle(sequential 1..10 => FuzzTest);
}

fn main() {
    eprintln!("run `cargo test --example fuzz_in_cargo_test`");
}

#[test]
fn shop_migrations_survive_random_lifecycles() {
    use migproof::backend::BackendKind;
    use migproof::fuzz::Harness;

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/shop/migrations");
    // A throwaway local cluster where PostgreSQL is installed; else DATABASE_URL.
    let url = std::env::var("DATABASE_URL").ok();
    let harness = Harness::new(&dir, BackendKind::Auto, url.as_deref()).expect("harness");
    harness.install();
    shop_lifecycle();
}
