"""Tests of the cityheart package."""
