use crate::report::Report;

pub fn run(_r: &mut Report) {}
