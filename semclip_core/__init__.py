"""What `triplegen` and `semclip_train` share: the user-error type and the one CLI error path,
atomic files and run locks, progress lines, the settings-file reader and the Parquet read error.

Both products import from here; this package imports neither of them (nor torch), so the two stay
independent of each other's commands (tests/test_layering.py).
"""
