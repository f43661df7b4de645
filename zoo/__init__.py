"""The model zoo: a manifest of named models and their files."""
