//! Media files, sidecars and catalog. INTERFACE OWNED BY THE STORE WORKER — see docs/interfaces.md.
