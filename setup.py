"""Shim for tools that still call setup.py; configuration is in pyproject.toml."""
import setuptools

setuptools.setup()
