"""The models, one module each (the README's Layout maps them)."""
