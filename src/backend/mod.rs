//! Image providers. INTERFACE OWNED BY THE BACKEND WORKER — see docs/interfaces.md.
