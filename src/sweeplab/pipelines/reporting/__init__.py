"""Reporting: tables, statistics and figures from run records, for any family."""
