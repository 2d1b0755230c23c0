//! The teeth tests are generated from the folders under `fixtures/broken/` at compile time;
//! adding a folder must regenerate them.

fn main() {
    println!("cargo:rerun-if-changed=../fixtures/broken");
}
