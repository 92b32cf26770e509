"""fnn applications: programs built on the library (the playground)."""
