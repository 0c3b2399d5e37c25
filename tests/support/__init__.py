"""Helpers shared by test tiers in different folders (the root conftest puts tests/ on sys.path)."""
