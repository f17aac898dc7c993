//! The register's agent (a skeleton until the agent issue lands).

fn main() {
    eprintln!("agent: not built yet (see ARCHITECTURE.md)");
    std::process::exit(2);
}
