"""Validation: checks that decide whether a parsed record can be materialised."""
