"""Quarry's shippers: one module per destination behind one small interface (see collector.pipeline)."""
