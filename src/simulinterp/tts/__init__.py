"""Speech out: synthesizers behind one protocol, and the output scheduler."""
