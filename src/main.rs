fn main() {
    println!("halo");
}
