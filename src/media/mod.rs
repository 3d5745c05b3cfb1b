//! Image header reading and previews. INTERFACE OWNED BY THE STORE WORKER — see docs/interfaces.md.
