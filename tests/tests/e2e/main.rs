//! End-to-end tests: the real binaries, real files, real sockets.

mod agent;
mod delivery;
mod portal;
