"""Shared foundation: settings, errors, database, blob stores, auth primitives, ids."""
