// The tensor engine.
