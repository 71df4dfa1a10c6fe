"""p402 test suite."""
