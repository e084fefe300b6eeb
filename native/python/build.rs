//! Version cfgs (`Py_3_10`...) for the Python this extension is built
//! for: a few C-API calls exist only from some version on.

fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
