"""Sweeps on a batch cluster: job scripts from templates, submission, and each variant's state."""
