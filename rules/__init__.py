"""The default rule packs of livestream-compliance (TOML data files; see docs/rules.md)."""
