fn main(){ println!("{}", env!("NOOP_BIOS")); }
