"""The tables. Each module holds SPEC (or SPECS) and the generator the spec names; see collector.table."""
