"""Tests of the lab package."""
