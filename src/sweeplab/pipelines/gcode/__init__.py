"""G-code programs and CNC sensor signals: parsing, vocabularies, token decomposition."""
