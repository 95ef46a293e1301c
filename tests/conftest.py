"""Shared pytest configuration for every test folder."""
