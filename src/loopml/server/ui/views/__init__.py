"""The web UI's pages, one module per noun; each has a ``router`` of GET pages (and the
POST actions of its write buttons)."""
