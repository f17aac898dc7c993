//! The cabinet server (a skeleton until the delivery and portal issues land).

fn main() {
    eprintln!("cabinet-server: not built yet (see ARCHITECTURE.md)");
    std::process::exit(2);
}
