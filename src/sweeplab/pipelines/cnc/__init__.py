"""CNC recordings: G-code programs, their sensor logs, and the tokens and windows made of them
(the language itself is ``sweeplab.gcode_language``)."""
